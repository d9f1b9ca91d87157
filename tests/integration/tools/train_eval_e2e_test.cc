// The whole offline loop (invad-datagen -> invad-train -> invad-eval) on a tiny data set. Trains
// for about a minute: label `slow`.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "bundle/bundle.h"
#include "bundle/files.h"
#include "bundle/safetensors.h"
#include "core/runtime/native.h"
#include "tests/integration/tools/train_eval_util.h"
#include "tests/testing/status_matchers.h"
#include "tools/common/csv.h"
#include "tools/eval/evaluator.h"
#include "tools/train/trainer.h"

namespace invad::tools {
namespace {

using ::invad::testing::StatusIs;

// The acceptance test of issue 3: a tiny model trained on a tiny data set (1) lowers its training
// loss by a stated factor, (2) separates defective from normal test images (I-AUROC >= 0.9), and
// (3) beats the same pipeline with an untrained, zero-initialised denoiser on the subtle defects
// by a clear margin — so a broken denoiser or inversion cannot pass.
TEST(TrainEvalEndToEndTest, TrainedModelDetectsDefectsAndBeatsAnUntrainedDenoiser) {
  const fs::path data = MakeData("e2e_data", "wood", 128, 60, 15, 5);
  TrainOptions o;
  o.data = {data.string()};
  o.out = Fresh("e2e_model").string();
  o.image_size = 128;
  o.latent_size = 16;
  o.dit_hidden = 64;
  o.dit_depth = 2;
  o.dit_heads = 4;
  o.steps = 600;
  o.batch_size = 16;
  o.allowed_steps = {3};
  o.progress = false;
  auto trained = RunTraining(o);
  ASSERT_OK(trained);
  RecordProperty("loss_first_tenth", std::to_string(trained->first_loss));
  RecordProperty("loss_last_tenth", std::to_string(trained->last_loss));
  EXPECT_LT(trained->last_loss, trained->first_loss / 3)
      << trained->first_loss << " -> " << trained->last_loss;

  EvalOptions e;
  e.model = trained->version_dir;
  e.data = data.string();
  e.out = Fresh("e2e_report").string();
  e.progress = false;
  e.overlays = 1;
  auto report = RunEvaluation(e);
  ASSERT_OK(report);
  const Metrics& all = report->categories.at("wood").at("all");
  const Metrics& subtle = report->categories.at("wood").at("subtle");
  RecordProperty("i_auroc", std::to_string(all.at("I-AUROC")));
  RecordProperty("subtle_i_auroc", std::to_string(subtle.at("I-AUROC")));
  EXPECT_GE(all.at("I-AUROC"), 0.9);
  {
    auto json = bundle::ReadFile((fs::path(e.out) / "report.json").string());
    ASSERT_OK(json);
    // the default
    EXPECT_THAT(*json, ::testing::HasSubstr("\"score_rule\": \"positional_max_norm\""));
  }
  EXPECT_TRUE(fs::exists(fs::path(e.out) / "report.md"));
  EXPECT_FALSE(fs::is_empty(fs::path(e.out) / "overlays"));
  // predictions.csv: a header, then one row per test image with its label and raw components.
  {
    std::ifstream csv(report->predictions_path);
    std::string line;
    ASSERT_TRUE(std::getline(csv, line));
    EXPECT_EQ(line,
              "path,category,defect,difficulty,label,score,sq_norm,diff,map_max,positional_max");
    int rows = 0, anomalous = 0;
    while (std::getline(csv, line)) {
      const std::vector<std::string> f = ParseCsvRow(line);
      ASSERT_EQ(f.size(), 10u) << line;
      EXPECT_EQ(f[4], f[2] == "good" ? "0" : "1") << line;
      EXPECT_GT(std::stod(f[6]), 0.0) << line;              // ‖z_T‖² of an inversion
      EXPECT_TRUE(std::isfinite(std::stod(f[9]))) << line;  // the calibration has positions
      ++rows;
      anomalous += f[4] == "1";
    }
    EXPECT_EQ(rows, report->images);
    EXPECT_GT(anomalous, 0);
  }

  // The same bundle with a zero-initialised denoiser (the DiT's output layer is zero, so it
  // predicts ε̂ = 0 everywhere) as a new version of the same model folder.
  auto b = bundle::ReadBundle(trained->version_dir);
  ASSERT_OK(b);
  v1::ModelConfig config = b->config;
  core::DitConfig dit;
  dit.latent = {config.latent().channels(), config.latent().height(), config.latent().width()};
  dit.hidden_size = o.dit_hidden;
  dit.depth = o.dit_depth;
  dit.num_heads = o.dit_heads;
  std::vector<bundle::BundleFile> files;
  for (const v1::FileEntry& f : config.files()) {
    auto bytes = bundle::ReadFile(trained->version_dir + "/" + f.path());
    ASSERT_OK(bytes);
    files.push_back({f.path(), *bytes});
    if (f.path() == "denoiser.safetensors")
      files.back().contents = bundle::SerializeSafetensors(core::InitDitWeights(dit, 1));
  }
  config.clear_files();
  auto untrained_dir = bundle::WriteNextVersion(o.out, config, files);
  ASSERT_OK(untrained_dir);
  e.model = *untrained_dir;
  e.out = Fresh("e2e_report_untrained").string();
  auto untrained = RunEvaluation(e);
  ASSERT_OK(untrained);
  const double u = untrained->categories.at("wood").at("subtle").at("I-AUROC");
  RecordProperty("untrained_subtle_i_auroc", std::to_string(u));
  EXPECT_GE(subtle.at("I-AUROC"), u + 0.2)
      << "trained " << subtle.at("I-AUROC") << " untrained " << u;
}

}  // namespace
}  // namespace invad::tools

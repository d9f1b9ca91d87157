// invad-train as a library on tiny invad-datagen data: splits, checkpoints, resume, re-calibration.
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "bundle/bundle.h"
#include "bundle/files.h"
#include "bundle/safetensors.h"
#include "core/base/status_macros.h"
#include "core/runtime/native.h"
#include "tests/integration/tools/train_eval_util.h"
#include "tests/testing/status_matchers.h"
#include "tools/eval/evaluator.h"
#include "tools/train/trainer.h"

namespace invad::tools {
namespace {

using ::invad::testing::StatusIs;

// The smallest model the trainer builds (64 px images resized to 32): filter bank, latent 4×4, DiT
// 16 wide, 1 block.
TrainOptions Tiny(const fs::path& data, const fs::path& out) {
  TrainOptions o;
  o.data = {data.string()};
  o.out = out.string();
  o.image_size = 32;
  o.latent_size = 4;
  o.filter_scales = {1.0f};
  o.dit_hidden = 16;
  o.dit_depth = 1;
  o.dit_heads = 2;
  o.steps = 12;
  o.batch_size = 4;
  o.allowed_steps = {1, 3};
  o.threads = 1;
  o.progress = false;
  return o;
}

// invad-eval at K = 1 on one thread, no overlays: that the bundle loads and evaluates.
absl::Status QuickEval(const std::string& model, const fs::path& data, const std::string& name) {
  EvalOptions e;
  e.model = model;
  e.data = data.string();
  e.out = Fresh(name).string();
  e.steps = 1;
  e.threads = 1;
  e.progress = false;
  e.overlays = 0;
  return RunEvaluation(e).status();
}

std::string Sha(const std::string& path) {
  auto bytes = bundle::ReadFile(path);
  EXPECT_OK(bytes.status());
  return bytes.ok() ? bundle::Sha256Hex(*bytes) : "";
}

TEST(TrainToolTest, ResumeAfterAStopIsBitIdenticalAndCalibrateOnlyKeepsTheWeights) {
  const fs::path data = MakeData("resume_data", "wood", 64, 26, 2, 1);
  // Uninterrupted.
  TrainOptions o = Tiny(data, Fresh("resume_a"));
  o.checkpoint_every = 4;
  auto a = RunTraining(o);
  ASSERT_OK(a);
  EXPECT_EQ(a->train_images, 6);  // 26 − max(20, ⌈2.6⌉) held out
  EXPECT_EQ(a->val_images, 20);
  EXPECT_EQ(fs::path(a->version_dir).filename(), "1");
  EXPECT_FALSE(fs::exists(fs::path(o.out) / ".checkpoint"));  // removed on success
  // Stopped after 7 steps, then resumed.
  TrainOptions p = Tiny(data, Fresh("resume_b"));
  p.checkpoint_every = 4;
  p.stop_after_steps = 7;
  EXPECT_THAT(RunTraining(p), StatusIs(absl::StatusCode::kAborted, "resume to continue"));
  ASSERT_TRUE(fs::exists(fs::path(p.out) / ".checkpoint" / "denoiser.safetensors"));
  p.stop_after_steps = 0;
  p.resume = true;
  auto b = RunTraining(p);
  ASSERT_OK(b);
  EXPECT_EQ(Sha(a->version_dir + "/denoiser.safetensors"),
            Sha(b->version_dir + "/denoiser.safetensors"));
  // A checkpoint from other options is refused under --resume.
  p.stop_after_steps = 5;
  p.resume = false;
  EXPECT_THAT(RunTraining(p), StatusIs(absl::StatusCode::kAborted));
  p.stop_after_steps = 0;
  p.resume = true;
  p.seed = 7;
  EXPECT_THAT(RunTraining(p), StatusIs(absl::StatusCode::kFailedPrecondition, "other data"));

  // Re-calibration on other normal images, under another score rule: a new version, same
  // weights, new statistics, the rule asked for (training calibrated under the default,
  // positional_max_norm, with position statistics from its training images, which the new
  // version keeps unless --position_data gives other images).
  TrainOptions c;
  c.calibrate_only = true;
  c.model = o.out;
  c.data = {(data / "test" / "good").string()};
  c.allowed_steps = o.allowed_steps;
  c.progress = false;
  c.threads = 1;
  c.score_rule = "peak";
  EXPECT_THAT(RunTraining(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                       "expected positional_max_norm, max_norm or diff_sq_norm"));
  c.score_rule = "diff_sq_norm";
  auto r = RunTraining(c);
  ASSERT_OK(r);
  EXPECT_EQ(fs::path(r->version_dir).filename(), "2");
  EXPECT_EQ(Sha(a->version_dir + "/denoiser.safetensors"),
            Sha(r->version_dir + "/denoiser.safetensors"));
  auto v1 = bundle::ReadBundle(a->version_dir);
  auto v2 = bundle::ReadBundle(r->version_dir);
  ASSERT_OK(v1);
  ASSERT_OK(v2);
  EXPECT_EQ(v2->config.metadata().at("recalibrated_from_version"), "1");
  auto k3 = bundle::FindCalibration(v2->config, 3);
  ASSERT_OK(k3);
  EXPECT_EQ(k3->num_images, 2);
  EXPECT_NE(k3->sq_norm.center, bundle::FindCalibration(v1->config, 3)->sq_norm.center);
  EXPECT_EQ(k3->rule, core::ScoreRule::kDiffSqNorm);
  const int64_t h = v1->config.latent().height(), w = v1->config.latent().width();
  for (int k : o.allowed_steps) {
    auto trained = bundle::FindCalibration(v1->config, k);
    ASSERT_OK(trained);
    EXPECT_EQ(trained->rule, core::ScoreRule::kPositionalMaxNorm);
    EXPECT_GT(trained->max_norm.scale, 0);
    EXPECT_GT(trained->max_norm.center, 0);
    EXPECT_EQ(trained->position.height, h);
    EXPECT_EQ(trained->position.width, w);
    ASSERT_EQ(trained->position.center.size(), static_cast<size_t>(h * w));
    EXPECT_GT(trained->positional_max.scale, 0);
    EXPECT_EQ(bundle::FindCalibration(v2->config, k)->position.center, trained->position.center);
  }
  EXPECT_EQ(v1->config.metadata().at("position_images"), absl::StrCat(a->train_images));
  // --position_data: the positions are fitted on those images instead (here the same held-out
  // images as the calibration, for the test's sake), under positional_max_norm.
  c.score_rule = "positional_max_norm";
  c.position_data = {(data / "test" / "good").string()};
  auto r3 = RunTraining(c);
  ASSERT_OK(r3);
  auto v3 = bundle::ReadBundle(r3->version_dir);
  ASSERT_OK(v3);
  auto k3_v3 = bundle::FindCalibration(v3->config, 3);
  ASSERT_OK(k3_v3);
  EXPECT_EQ(k3_v3->rule, core::ScoreRule::kPositionalMaxNorm);
  EXPECT_NE(k3_v3->position.center, bundle::FindCalibration(v1->config, 3)->position.center);
  EXPECT_EQ(v3->config.metadata().at("position_data"), (data / "test" / "good").string());
  EXPECT_EQ(v3->config.metadata().at("position_images"), absl::StrCat(r3->val_images));
  // At most max_position_images of them (of the 26 training images here: 2).
  c.position_data = {(data / "train" / "good").string()};
  c.max_position_images = 2;
  auto r4 = RunTraining(c);
  ASSERT_OK(r4);
  auto v4 = bundle::ReadBundle(r4->version_dir);
  ASSERT_OK(v4);
  EXPECT_EQ(v4->config.metadata().at("position_images"), "2");
  c.max_position_images = 1;
  EXPECT_THAT(RunTraining(c), StatusIs(absl::StatusCode::kInvalidArgument, "max_position_images"));
  // Only re-calibration takes other images for the positions.
  TrainOptions t = o;
  t.position_data = c.position_data;
  EXPECT_THAT(RunTraining(t), StatusIs(absl::StatusCode::kInvalidArgument, "--position_data"));
}

// Trains a 64-px model for 2 steps on `data` with `set` applied to the options, reads its bundle
// back and checks that it evaluates: the auto-feature tests' common run.
absl::StatusOr<bundle::Bundle> TrainTinyAndRead(const fs::path& data, const std::string& name,
                                                const std::function<void(TrainOptions&)>& set) {
  TrainOptions o = Tiny(data, Fresh(name));
  o.image_size = 64;
  o.steps = 2;
  set(o);
  INVAD_ASSIGN_OR_RETURN(const auto r, RunTraining(o));
  INVAD_ASSIGN_OR_RETURN(bundle::Bundle b, bundle::ReadBundle(r.version_dir));
  INVAD_RETURN_IF_ERROR(QuickEval(o.out, data, name + "_report"));
  return b;
}

TEST(TrainToolTest, RotationalChannelsFollowTheDataUnderAuto) {
  // A washer (one round part at a random pose) turns them on; a texture does not; an explicit
  // value overrides auto; the bundle records the decision and the measured roundness, and loads.
  const fs::path washer = MakeData("rot_washer_data", "washer", 64, 24, 1, 1);
  const fs::path tile = MakeData("rot_tile_data", "tile", 64, 24, 1, 1);
  struct Case {
    fs::path data;
    std::string flag;
    bool on;
    bool measured;  // auto: the bundle records foreground_roundness
  };
  for (const Case& c : {Case{washer, "auto", true, true}, Case{tile, "auto", false, true},
                        Case{washer, "false", false, false}}) {
    auto b = TrainTinyAndRead(c.data, "rot_model", [&](TrainOptions& o) {
      o.filter_rotational = c.flag;
      o.filter_pixel_norm = "false";  // its own test below
    });
    ASSERT_OK(b);
    EXPECT_EQ(b->config.encoder().filter_bank().rotational(), c.on) << c.data << " " << c.flag;
    EXPECT_EQ(b->config.latent().channels(), 10 + 6 + 2 + 4 + (c.on ? 4 : 0));
    const auto& meta = b->config.metadata();
    if (!c.measured) {
      EXPECT_FALSE(meta.contains("foreground_roundness"));
    } else {
      ASSERT_TRUE(meta.contains("foreground_roundness"));
      const double roundness = std::stod(meta.at("foreground_roundness"));
      EXPECT_EQ(roundness >= core::kRoundPartThreshold, c.on) << roundness;
    }
  }
  TrainOptions bad = Tiny(washer, Fresh("rot_bad"));
  bad.filter_rotational = "yes";
  EXPECT_THAT(RunTraining(bad), StatusIs(absl::StatusCode::kInvalidArgument, "filter_rotational"));
}

TEST(TrainToolTest, PixelNormChannelsFollowTheRotationalChannelsAndThePoseUnderAuto) {
  // Washers at random poses: rotational channels and pose normalisation on, so auto turns the
  // pixel-standardised channels on and the bundle carries their statistics, fitted on the
  // pose-normalised training images; without the pose (or as a texture) auto leaves them off;
  // true without the rotational channels, or a bad value, is INVALID_ARGUMENT.
  const fs::path washer = MakeData("pix_washer_data", "washer", 64, 24, 1, 1);
  const fs::path tile = MakeData("pix_tile_data", "tile", 64, 24, 1, 1);
  struct Case {
    fs::path data;
    std::string flag, pose;
    bool on;
  };
  for (const Case& c : {Case{washer, "auto", "auto", true}, Case{washer, "auto", "none", false},
                        Case{tile, "auto", "auto", false}, Case{washer, "false", "auto", false},
                        Case{washer, "true", "none", true}}) {
    auto b = TrainTinyAndRead(c.data, "pix_model", [&](TrainOptions& o) {
      o.filter_pixel_norm = c.flag;
      o.pose = c.pose;
    });
    ASSERT_OK(b);
    const auto& fb = b->config.encoder().filter_bank();
    EXPECT_EQ(fb.pixel_norm(), c.on) << c.data << " " << c.flag << " " << c.pose;
    // auto records its decision; an explicit value records nothing.
    const auto& meta = b->config.metadata();
    if (c.flag == "auto") {
      ASSERT_TRUE(meta.contains("pixel_norm"));
      EXPECT_EQ(meta.at("pixel_norm"), c.on ? "on" : "off");
    } else {
      EXPECT_FALSE(meta.contains("pixel_norm"));
    }
    // With them, --filter_residual_only=auto keeps only the rotational and pixel-standardised
    // channels.
    EXPECT_EQ(fb.residual_only(), c.on);
    EXPECT_EQ(b->config.latent().channels(),
              c.on ? 4 + 4 : 10 + 6 + 2 + 4 + (fb.rotational() ? 4 : 0));
    if (!c.on) {
      EXPECT_TRUE(fb.weights_file().empty());
      continue;
    }
    auto stats = bundle::ReadSafetensors(b->dir + "/" + fb.weights_file());
    ASSERT_OK(stats);
    ASSERT_TRUE(stats->count("pixel_std") && stats->count("pixel_mean"));
    EXPECT_EQ(stats->at("pixel_std").shape, (core::Shape{2, 64, 64}));
    EXPECT_EQ(stats->at("pixel_mean").shape, (core::Shape{2, 64, 64}));
  }
  const fs::path bad_out = Fresh("pix_bad");
  TrainOptions o = Tiny(tile, bad_out);
  o.image_size = 64;
  o.filter_rotational = "false";
  o.filter_pixel_norm = "true";
  EXPECT_THAT(RunTraining(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "pixel_norm needs rotational"));
  o.filter_pixel_norm = "maybe";
  EXPECT_THAT(RunTraining(o), StatusIs(absl::StatusCode::kInvalidArgument, "--filter_pixel_norm"));
}

TEST(TrainToolTest, LatticeChannelsFollowTheDataUnderAuto) {
  // A woven grid (a lattice in every image) turns them on; a round part does not; an explicit
  // value overrides auto; the bundle records the decision and the measured fraction, and loads.
  // (Every channel family on: residual-only has its own test below.)
  const fs::path grid = MakeData("lat_grid_data", "grid", 64, 24, 1, 1);
  const fs::path washer = MakeData("lat_washer_data", "washer", 64, 24, 1, 1);
  struct Case {
    fs::path data;
    std::string flag;
    bool on;
  };
  for (const Case& c : {Case{grid, "auto", true}, Case{washer, "auto", false},
                        Case{grid, "false", false}, Case{washer, "true", true}}) {
    auto b = TrainTinyAndRead(c.data, "lat_model", [&](TrainOptions& o) {
      o.filter_rotational = "false";
      o.filter_lattice = c.flag;
      o.filter_residual_only = "false";
    });
    ASSERT_OK(b);
    const auto& fb = b->config.encoder().filter_bank();
    EXPECT_EQ(fb.lattice(), c.on) << c.data << " " << c.flag;
    EXPECT_TRUE(fb.laplacian() && fb.periodic() && !fb.residual_only());
    EXPECT_EQ(b->config.latent().channels(), 10 + 6 + 2 + 4 + (c.on ? 4 : 0));
    const auto& meta = b->config.metadata();
    EXPECT_EQ(meta.contains("lattice_fraction"), c.flag == "auto");
    if (c.flag == "auto") {
      const double fraction = std::stod(meta.at("lattice_fraction"));
      EXPECT_EQ(fraction >= core::kLatticeFraction, c.on) << fraction;
    }
  }
  TrainOptions bad = Tiny(grid, Fresh("lat_bad"));
  bad.filter_lattice = "maybe";
  EXPECT_THAT(RunTraining(bad), StatusIs(absl::StatusCode::kInvalidArgument, "filter_lattice"));
}

TEST(TrainToolTest, ResidualOnlyFollowsAFineLatticeOrThePixelStandardisedChannelsUnderAuto) {
  // The datagen grid's period is 11–14 px: finer than a 16-px latent cell (64 px, 4×4 latent), so
  // auto keeps only the lattice channels (no derivative, mean/SD, Laplacian or periodic ones);
  // coarser than an 8-px cell, so there it keeps everything; a washer keeps only its rotational
  // and pixel-standardised channels where those are on, everything without them. Explicit values
  // override auto, the Laplacian and periodic flags too; the bundle records the decision and the
  // period it measured, and loads; residual-only with no residual channel family to keep, or a
  // bad value, is INVALID_ARGUMENT.
  const fs::path grid = MakeData("res_grid_data", "grid", 64, 24, 1, 1);
  const fs::path washer = MakeData("res_washer_data", "washer", 64, 24, 1, 1);
  struct Case {
    fs::path data;
    int latent;
    std::string flag;
    bool on;
    int channels;  // Tiny's one scale: 10 derivative + 6 mean/SD channels without residual_only
    std::string laplacian = "auto";
    std::string rotational = "false";
  };
  for (const Case& c :
       {Case{grid, 4, "auto", true, 4}, Case{grid, 8, "auto", false, 26},
        Case{washer, 4, "auto", false, 22}, Case{grid, 4, "false", false, 26},
        Case{grid, 4, "auto", true, 6, "true"}, Case{washer, 4, "auto", true, 8, "auto", "auto"}}) {
    auto b = TrainTinyAndRead(c.data, "res_model", [&](TrainOptions& o) {
      o.latent_size = c.latent;
      o.filter_rotational = c.rotational;
      o.filter_residual_only = c.flag;
      o.filter_laplacian = c.laplacian;
    });
    ASSERT_OK(b);
    const auto& fb = b->config.encoder().filter_bank();
    EXPECT_EQ(fb.residual_only(), c.on) << c.data << " " << c.latent << " " << c.flag;
    EXPECT_EQ(fb.periodic(), !c.on);
    EXPECT_EQ(fb.laplacian(), !c.on || c.laplacian == "true");
    EXPECT_EQ(b->config.latent().channels(), c.channels) << c.data << " " << c.latent;
    const auto& meta = b->config.metadata();
    EXPECT_EQ(meta.contains("residual_only"), c.flag == "auto");
    if (c.flag == "auto") {
      EXPECT_EQ(meta.at("residual_only"), c.on ? "on" : "off");
    }
    if (c.flag == "auto" && fb.lattice()) {
      const double period = std::stod(meta.at("lattice_period"));
      EXPECT_GE(period, 10.5);
      EXPECT_LE(period, 14.5);
    }
  }
  TrainOptions bad = Tiny(washer, Fresh("res_bad"));
  bad.image_size = 64;
  bad.filter_rotational = "false";
  bad.filter_residual_only = "true";  // no lattice, rotational or periodic channels left
  EXPECT_THAT(RunTraining(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                         "residual_only needs periodic, rotational or lattice"));
  bad.filter_residual_only = "maybe";
  EXPECT_THAT(RunTraining(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "--filter_residual_only"));
  bad.filter_residual_only = "auto";
  bad.filter_laplacian = "on";
  EXPECT_THAT(RunTraining(bad), StatusIs(absl::StatusCode::kInvalidArgument, "--filter_laplacian"));
  bad.filter_laplacian = "auto";
  bad.filter_periodic = "1";
  EXPECT_THAT(RunTraining(bad), StatusIs(absl::StatusCode::kInvalidArgument, "--filter_periodic"));
}

// `n` images of one part that never moves (a fixture): a lit ring, pixel noise only.
fs::path FixedPart(const std::string& name, int n) {
  const fs::path dir = Fresh(name);
  fs::create_directories(dir);
  cv::RNG rng(5);
  for (int i = 0; i < n; ++i) {
    cv::Mat m(64, 64, CV_32F, cv::Scalar(35));
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) {
        const double dx = x - 31.5, dy = y - 31.5, r = std::hypot(dx, dy);
        if (r >= 8 && r <= 20) m.at<float>(y, x) = 150 + 40 * std::cos(std::atan2(dy, dx) - 0.7);
      }
    }
    cv::Mat noise(64, 64, CV_32F);
    rng.fill(noise, cv::RNG::NORMAL, 0, 3);
    cv::Mat u8;
    cv::Mat(m + noise).convertTo(u8, CV_8U);
    cv::imwrite((dir / absl::StrFormat("%03d.png", i)).string(), u8);
  }
  return dir;
}

TEST(TrainToolTest, PoseNormalisationFollowsTheDataUnderAuto) {
  // A washer at random poses turns it on; a texture (no single part) and a part in a fixture (the
  // canonical pose would not make the images more alike) do not; explicit values override auto;
  // the manifest records it, with what auto measured; a pose-normalised bundle evaluates.
  const fs::path washer = MakeData("pose_washer_data", "washer", 64, 24, 1, 1);
  const fs::path tile = MakeData("pose_tile_data", "tile", 64, 24, 1, 1);
  const fs::path fixed = FixedPart("pose_fixed_data", 24);
  struct Case {
    fs::path data;
    std::string flag;
    bool on;
    bool evaluate;
  };
  for (const Case& c : {Case{washer, "auto", true, true}, Case{tile, "auto", false, false},
                        Case{fixed, "auto", false, false}, Case{washer, "none", false, false},
                        Case{tile, "moment", true, true}}) {
    TrainOptions o = Tiny(c.data, Fresh("pose_model"));
    o.image_size = 64;
    o.steps = 2;
    o.pose = c.flag;
    auto r = RunTraining(o);
    ASSERT_OK(r);
    auto b = bundle::ReadBundle(r->version_dir);
    ASSERT_OK(b);
    EXPECT_EQ(b->config.input().pose(), c.on ? v1::POSE_MOMENT : v1::POSE_NONE)
        << c.data << " " << c.flag;
    const auto& meta = b->config.metadata();
    EXPECT_EQ(meta.contains("pose_variance_ratio"), c.flag == "auto");
    if (c.flag == "auto") {
      const double parts = std::stod(meta.at("pose_part_fraction"));
      const double ratio = std::stod(meta.at("pose_variance_ratio"));
      EXPECT_EQ(parts >= kPosePartFraction && ratio <= kPoseVarianceRatio, c.on)
          << c.data << ": parts " << parts << ", variance ratio " << ratio;
      if (c.data == tile) {
        EXPECT_LT(parts, kPosePartFraction);
      }
      if (c.data == fixed) {
        EXPECT_GE(parts, kPosePartFraction);
        EXPECT_GT(ratio, kPoseVarianceRatio);
      }
    }
    if (!c.evaluate) continue;
    EXPECT_OK(QuickEval(o.out, c.data, "pose_report"));
  }
  // invad-eval brings maps back into the image's frame, where the masks are: the pixel-Gaussian
  // baseline (statistics of the canonical training images, no trained weights) on a
  // pose-normalised washer localises the obvious defects (0.99; 0.66 with maps left canonical).
  const fs::path more = MakeData("pose_washer_more", "washer", 64, 24, 4, 3);
  TrainOptions o = Tiny(more, Fresh("pose_eval_model"));
  o.image_size = 64;
  o.steps = 2;
  ASSERT_OK(RunTraining(o).status());
  EvalOptions e;
  e.model = o.out;
  e.data = more.string();
  e.out = Fresh("pose_eval_report").string();
  e.mode = "pixel_gaussian";
  e.threads = 1;
  e.progress = false;
  e.overlays = 0;
  auto report = RunEvaluation(e);
  ASSERT_OK(report);
  EXPECT_GT(report->mean.at("obvious").at("P-AUROC"), 0.85);

  TrainOptions bad = Tiny(washer, Fresh("pose_bad"));
  bad.pose = "yes";
  EXPECT_THAT(RunTraining(bad), StatusIs(absl::StatusCode::kInvalidArgument, "pose"));
}

TEST(TrainToolTest, PerLocationLatentNormIsWrittenAndServes) {
  // --normalize_latent_per_location: one mean and std per channel and latent cell in the manifest;
  // the bundle loads (validated against the latent shape) and evaluates.
  const fs::path washer = MakeData("ploc_washer_data", "washer", 64, 24, 1, 1);
  TrainOptions o = Tiny(washer, Fresh("ploc_model"));
  o.image_size = 64;
  o.steps = 2;
  o.normalize_latent_per_location = true;
  auto r = RunTraining(o);
  ASSERT_OK(r);
  auto b = bundle::ReadBundle(r->version_dir);
  ASSERT_OK(b);
  const auto& l = b->config.latent();
  EXPECT_EQ(l.mean_size(), l.channels() * l.height() * l.width());
  EXPECT_EQ(l.std_size(), l.mean_size());
  EXPECT_GT(l.height() * l.width(), 1);
  EXPECT_OK(QuickEval(o.out, washer, "ploc_report"));
  o.normalize_latent_per_location = false;
  o.out = Fresh("pchan_model").string();
  auto p = RunTraining(o);
  ASSERT_OK(p);
  auto c = bundle::ReadBundle(p->version_dir);
  ASSERT_OK(c);
  EXPECT_EQ(c->config.latent().mean_size(), c->config.latent().channels());
}

TEST(TrainToolTest, UnreadableFilesAreSkippedAndTooFewImagesFail) {
  const fs::path data = MakeData("skip_data", "tile", 64, 24, 1, 1);
  std::ofstream(data / "train" / "good" / "broken.png") << "not a png";
  TrainOptions o = Tiny(data, Fresh("skip_model"));
  o.steps = 2;
  auto r = RunTraining(o);
  ASSERT_OK(r);
  EXPECT_EQ(r->skipped_files, 1);
  EXPECT_EQ(r->train_images + r->val_images, 24);

  const fs::path few = MakeData("few_data", "tile", 64, 20, 1, 1);
  TrainOptions f = Tiny(few, Fresh("few_model"));
  EXPECT_THAT(RunTraining(f), StatusIs(absl::StatusCode::kFailedPrecondition, "need at least 21"));
  f.steps = 1;
  f.epochs = 2;
  EXPECT_THAT(RunTraining(f), StatusIs(absl::StatusCode::kInvalidArgument, "at most one"));
}

}  // namespace
}  // namespace invad::tools

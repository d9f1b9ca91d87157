#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "bundle/files.h"
#include "tests/testing/status_matchers.h"
#include "tools/datagen/synth.h"

namespace invad::tools {
namespace {

namespace fs = std::filesystem;
using ::invad::testing::StatusIs;

TEST(SynthesizeTest, DeterministicForASeedAndDifferentAcrossSeeds) {
  auto a = Synthesize("wood", "stain", false, 7, 128);
  auto b = Synthesize("wood", "stain", false, 7, 128);
  auto c = Synthesize("wood", "stain", false, 8, 128);
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_EQ(a->pixels, b->pixels);
  EXPECT_EQ(a->mask, b->mask);
  EXPECT_NE(a->pixels, c->pixels);
}

TEST(SynthesizeTest, NormalSamplesVaryAndHaveEmptyMasks) {
  for (const std::string& cat : DatagenCategories()) {
    auto a = Synthesize(cat, "good", false, 1, 128);
    auto b = Synthesize(cat, "good", false, 2, 128);
    ASSERT_OK(a);
    ASSERT_OK(b);
    EXPECT_NE(a->pixels, b->pixels) << cat;
    EXPECT_EQ(std::count(a->mask.begin(), a->mask.end(), 0), static_cast<long>(a->mask.size()))
        << cat;
  }
}

// Every (category, defect, difficulty): the mask is binary and non-empty, pixels change only
// inside it, and subtle defects obey their bounds.
TEST(SynthesizeTest, MasksAreExactAndSubtleDefectsAreSubtle) {
  for (const std::string& cat : DatagenCategories()) {
    for (const std::string& defect : DatagenDefects()) {
      for (bool subtle : {false, true}) {
        SCOPED_TRACE(cat + "/" + defect + (subtle ? "/subtle" : "/obvious"));
        auto good = Synthesize(cat, "good", false, 99, 256);
        auto bad =
            Synthesize(cat, defect, subtle, 99, 256);  // same seed: same normal image underneath
        ASSERT_OK(bad);
        int inside = 0, changed_outside = 0;
        for (size_t p = 0; p < bad->mask.size(); ++p) {
          ASSERT_TRUE(bad->mask[p] == 0 || bad->mask[p] == 255);
          bool changed = false;
          for (int k = 0; k < bad->channels; ++k)
            changed |= bad->pixels[p * bad->channels + k] != good->pixels[p * good->channels + k];
          inside += bad->mask[p] != 0;
          changed_outside += changed && bad->mask[p] == 0;
        }
        EXPECT_GT(inside, 0);
        EXPECT_EQ(changed_outside, 0);
        EXPECT_EQ(bad->difficulty, subtle ? "subtle" : "obvious");
        if (subtle) {
          EXPECT_LE(bad->contrast, 15.0);
          EXPECT_LE(bad->area_fraction, 0.005);
        }
        EXPECT_GT(bad->contrast, 0.0);
      }
    }
  }
}

TEST(SynthesizeTest, GreyAndColourCategories) {
  std::set<int> channels;
  for (const std::string& cat : DatagenCategories())
    channels.insert(Synthesize(cat, "good", false, 1, 64)->channels);
  EXPECT_EQ(channels, (std::set<int>{1, 3}));
  EXPECT_THAT(Synthesize("marble", "good", false, 1, 64),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Synthesize("wood", "dent", false, 1, 64),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GenerateDatasetTest, WritesTheMvtecLayoutReproducibly) {
  const fs::path root = fs::temp_directory_path() / ("invad_datagen_" + std::to_string(::getpid()));
  DatagenOptions o;
  o.out = (root / "a").string();
  o.size = 64;
  o.train = 3;
  o.test_good = 2;
  o.test_per_defect = 5;
  o.categories = {"tile", "washer"};
  auto report = GenerateDataset(o);
  ASSERT_OK(report);
  EXPECT_EQ(report->images, 2 * (3 + 2 + 6 * 5));
  EXPECT_EQ(report->defective, 2 * 6 * 5);
  EXPECT_EQ(report->subtle * 5, report->defective * 2);  // 2 of every 5: at least a third
  for (const char* cat : {"tile", "washer"}) {
    const fs::path c = root / "a" / cat;
    EXPECT_TRUE(fs::exists(c / "train/good/002.png"));
    EXPECT_TRUE(fs::exists(c / "test/good/001.png"));
    for (const std::string& d : DatagenDefects()) {
      EXPECT_TRUE(fs::exists(c / "test" / d / "004.png")) << d;
      cv::Mat m =
          cv::imread((c / "ground_truth" / d / "004_mask.png").string(), cv::IMREAD_UNCHANGED);
      ASSERT_FALSE(m.empty()) << d;
      EXPECT_GT(cv::countNonZero(m), 0) << d;
    }
    std::ifstream labels(c / "labels.csv");
    std::string header;
    std::getline(labels, header);
    EXPECT_EQ(header, "path,split,label,defect,difficulty,area_fraction,contrast");
  }
  o.out = (root / "b").string();
  o.threads = 1;  // the output must not depend on the number of workers
  ASSERT_OK(GenerateDataset(o));
  EXPECT_EQ(*bundle::ReadFile((root / "a/tile/labels.csv").string()),
            *bundle::ReadFile((root / "b/tile/labels.csv").string()));
  EXPECT_EQ(*bundle::ReadFile((root / "a/washer/test/crack/003.png").string()),
            *bundle::ReadFile((root / "b/washer/test/crack/003.png").string()));
  o.size = 10;
  EXPECT_THAT(GenerateDataset(o), StatusIs(absl::StatusCode::kInvalidArgument, "--size"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace invad::tools

#include "tools/common/dataset.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"
#include "tools/common/flags.h"

namespace invad::tools {
namespace {

namespace fs = std::filesystem;
using ::invad::testing::StatusIs;
using ::testing::ElementsAre;

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::path(::testing::TempDir()) /
        ("dataset_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
  }
  void Touch(const fs::path& rel) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << "x";
  }
  fs::path root_;
};

TEST_F(DatasetTest, MultiCategoryRootSingleCategoryAndFlatFolder) {
  Touch("a/train/good/1.png");
  Touch("a/train/good/0.png");
  Touch("a/train/good/notes.txt");
  Touch("b/train/good/x.JPG");
  Touch("c/other/y.png");  // no train/good: not a category
  auto multi = FindTrainImages(root_.string());
  ASSERT_OK(multi);
  ASSERT_EQ(multi->size(), 3u);
  EXPECT_EQ((*multi)[0].category, "a");
  EXPECT_EQ(fs::path((*multi)[0].path).filename(), "0.png");
  EXPECT_EQ((*multi)[2].category, "b");

  auto single = FindTrainImages((root_ / "a").string());
  ASSERT_OK(single);
  ASSERT_EQ(single->size(), 2u);
  EXPECT_EQ((*single)[0].category, "a");

  auto flat = FindTrainImages((root_ / "a" / "train" / "good").string());
  ASSERT_OK(flat);
  ASSERT_EQ(flat->size(), 2u);
  EXPECT_EQ((*flat)[0].category, "");
}

TEST_F(DatasetTest, MissingOrEmptyFoldersAreNotFound) {
  EXPECT_THAT(FindTrainImages((root_ / "nope").string()),
              StatusIs(absl::StatusCode::kNotFound, "no such folder"));
  fs::create_directories(root_ / "empty");
  EXPECT_THAT(FindTrainImages((root_ / "empty").string()),
              StatusIs(absl::StatusCode::kNotFound, "no images"));
  EXPECT_THAT(FindTestImages((root_ / "empty").string()), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(DatasetTest, TestSplitWithMasksAndDifficulty) {
  Touch("cat/test/good/000.png");
  Touch("cat/test/scratch/000.png");
  Touch("cat/test/scratch/001.png");
  Touch("cat/ground_truth/scratch/000_mask.png");
  Touch("cat/ground_truth/scratch/001_mask.png");
  std::ofstream(root_ / "cat" / "labels.csv")
      << "path,split,label,defect,difficulty,area_fraction,contrast\n"
      << "test/scratch/000.png,test,1,scratch,subtle,0.001,10\n"
      << "test/scratch/001.png,test,1,scratch,obvious,0.01,80\n";
  auto t = FindTestImages((root_ / "cat").string());
  ASSERT_OK(t);
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].defect, "good");
  EXPECT_FALSE((*t)[0].anomalous);
  EXPECT_EQ((*t)[0].difficulty, "none");
  EXPECT_TRUE((*t)[1].anomalous);
  EXPECT_EQ((*t)[1].difficulty, "subtle");
  EXPECT_EQ((*t)[2].difficulty, "obvious");
  EXPECT_EQ(fs::path((*t)[2].mask_path).filename(), "001_mask.png");
  // The same through the root.
  auto r = FindTestImages(root_.string());
  ASSERT_OK(r);
  EXPECT_EQ(r->size(), 3u);
}

TEST_F(DatasetTest, DefectWithoutMaskIsAnError) {
  Touch("cat/test/hole/000.png");
  EXPECT_THAT(FindTestImages((root_ / "cat").string()),
              StatusIs(absl::StatusCode::kFailedPrecondition, "has no mask"));
}

TEST(FlagsTest, RepeatedFlagCollectsEveryForm) {
  const char* argv[] = {"prog", "--data=a", "--out", "o",       "--data",
                        "b",    "-data=c",  "--",    "--data=d"};
  EXPECT_THAT(RepeatedFlag(9, const_cast<char**>(argv), "data"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(ParseIntList({"1", "x"}, "allowed_steps"),
              StatusIs(absl::StatusCode::kInvalidArgument, "allowed_steps"));
  auto ok = ParseIntList({"1", "3"}, "k");
  ASSERT_OK(ok);
  EXPECT_THAT(*ok, ElementsAre(1, 3));
}

}  // namespace
}  // namespace invad::tools

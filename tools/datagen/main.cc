// invad-datagen: writes a synthetic data set in the MVTec AD layout (tools/datagen/synth.h).
//
//   invad-datagen --out DIR [--seed N] [--size 256] [--train 60] [--test_good 20]
//                 [--test_per_defect 5] [--categories grid,wood,...]
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"

#include "tools/datagen/synth.h"

ABSL_FLAG(std::string, out, "", "Root folder; one sub-folder per category is written inside it.");
ABSL_FLAG(uint64_t, seed, 0, "Seed; the same seed gives byte-identical images.");
ABSL_FLAG(int, size, 256, "Image width and height in pixels.");
ABSL_FLAG(int, train, 60, "Normal training images per category.");
ABSL_FLAG(int, test_good, 20, "Normal test images per category.");
ABSL_FLAG(int, test_per_defect, 5,
          "Test images per defect kind and category (2 of every 5 subtle).");
ABSL_FLAG(int, threads, 2, "Worker threads (the output does not depend on it).");
ABSL_FLAG(std::vector<std::string>, categories, {},
          "Comma-separated subset of the categories (default: all).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes synthetic defect-free and defective images with exact masks in the MVTec AD layout.\n"
      "Categories: " +
      absl::StrJoin(invad::tools::DatagenCategories(), ", ") +
      "\nDefects: " + absl::StrJoin(invad::tools::DatagenDefects(), ", ") +
      "\nUsage: invad-datagen --out DIR [--seed N] [flags]");
  absl::ParseCommandLine(argc, argv);
  invad::tools::DatagenOptions o;
  o.out = absl::GetFlag(FLAGS_out);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.size = absl::GetFlag(FLAGS_size);
  o.train = absl::GetFlag(FLAGS_train);
  o.test_good = absl::GetFlag(FLAGS_test_good);
  o.test_per_defect = absl::GetFlag(FLAGS_test_per_defect);
  o.categories = absl::GetFlag(FLAGS_categories);
  o.threads = absl::GetFlag(FLAGS_threads);
  auto report = invad::tools::GenerateDataset(o);
  if (!report.ok()) {
    std::fprintf(stderr, "invad-datagen: %s\n", report.status().ToString().c_str());
    return 2;
  }
  std::printf("invad-datagen: %d images (%d defective, %d subtle) in %s, %.2f s, %.0f images/s\n",
              report->images, report->defective, report->subtle, o.out.c_str(), report->seconds,
              report->images / report->seconds);
  return 0;
}

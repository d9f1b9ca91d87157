// File: bundle/bundle.h
//
// Model bundles and the model repository (docs/bundles.md):
//
//   <repo>/<name>/<version>/config.pbtxt      text-format invad.v1.ModelConfig
//   <repo>/<name>/<version>/<files...>        weights (safetensors) or TorchScript, checksummed
//
// Versions are positive integers; a model folder's latest version is its highest. Writers create a
// new version atomically (a hidden temporary folder, then rename), so readers never see half a
// bundle.
//
// Errors: NotFound (no such folder, no config.pbtxt, no versions, a listed file missing),
// InvalidArgument (unparsable manifest, an invalid field — named —, a size or checksum mismatch,
// a malformed weights file). Nothing here crashes on bad files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "core/model/inversion.h"
#include "core/runtime/runtime.h"
#include "core/scoring/calibration.h"
#include "invad/v1/model_config.pb.h"
#include "preprocess/preprocess.h"

namespace invad::bundle {

inline constexpr char kManifestName[] = "config.pbtxt";
inline constexpr int kFormatVersion = 1;

// Text → manifest (syntax only). InvalidArgument with the parser's line and column.
absl::StatusOr<v1::ModelConfig> ParseManifest(std::string_view text);
std::string FormatManifest(const v1::ModelConfig& config);
// Semantic checks; InvalidArgument naming the field.
absl::Status ValidateManifest(const v1::ModelConfig& config);

struct Bundle {
  std::string dir;   // the version folder
  std::string name;  // the model folder's name
  int version = 0;
  v1::ModelConfig config;
};

// Reads, validates and checksum-verifies a version folder.
absl::StatusOr<Bundle> ReadBundle(const std::string& version_dir);

// Version numbers present in a model folder, ascending (folders named by positive integers).
absl::StatusOr<std::vector<int>> ListVersions(const std::string& model_dir);
// A model folder resolves to its latest version folder; a version folder to itself.
absl::StatusOr<std::string> ResolveVersionDir(const std::string& path);

struct BundleFile {
  std::string path;  // relative to the version folder
  std::string contents;
};
// Writes `files` and the manifest as version max+1 of `model_dir` (created if needed). Fills in
// `files` entries (size, SHA-256) and validates before anything is visible. Returns the folder.
absl::StatusOr<std::string> WriteNextVersion(const std::string& model_dir, v1::ModelConfig config,
                                             const std::vector<BundleFile>& files);

// Manifest → the plain structs of the libraries below it.
preprocess::InputSpec ToInputSpec(const v1::InputSpec& in);
core::LatentShape ToLatentShape(const v1::LatentSpec& l);
absl::StatusOr<core::NoiseSchedule> ToNoiseSchedule(const v1::DiffusionSpec& d);
core::Precision ToPrecision(v1::Precision p);
core::Calibration ToCalibration(const v1::CalibrationEntry& e);
v1::CalibrationEntry FromCalibration(const core::Calibration& c, int steps,
                                     const std::string& category);
// The calibration of (steps, category); falls back to category "" when the category has none.
absl::StatusOr<core::Calibration> FindCalibration(const v1::ModelConfig& config, int steps,
                                                  const std::string& category = "");

// A bundle made runnable: the pipeline (encoder, denoiser, plans) and its input spec.
struct LoadedModel {
  Bundle bundle;
  preprocess::InputSpec input;
  std::unique_ptr<core::Pipeline> pipeline;
};
// The pipeline a manifest describes, its files read from `dir`; the manifest is not validated
// here and calibration is not needed (a trainer builds the pipeline it is about to calibrate).
absl::StatusOr<std::unique_ptr<core::Pipeline>> BuildPipeline(const v1::ModelConfig& config,
                                                              const std::string& dir,
                                                              const std::string& device = "cpu");
// The precision a manifest's denoiser runs in on `device`: as the manifest says, or when it says
// nothing (PRECISION_UNSPECIFIED), the device's default: bf16 on cuda, fp32 on cpu.
core::Precision ServedPrecision(v1::Precision p, const std::string& device);
// `path` is a model folder (latest version) or a version folder. The device comes from `runtime`;
// the precision from the manifest (ServedPrecision).
absl::StatusOr<LoadedModel> LoadModel(const std::string& path, const std::string& device = "cpu");

}  // namespace invad::bundle

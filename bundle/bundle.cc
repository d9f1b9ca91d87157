#include "bundle/bundle.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

#include "bundle/files.h"
#include "bundle/safetensors.h"
#include "core/base/status_macros.h"
#include "core/runtime/native.h"

namespace invad::bundle {
namespace fs = std::filesystem;

namespace {

// The encoder the manifest's filter_bank spec describes, for validation and for building it.
core::FilterBankConfig FilterBankConfigOf(const v1::FilterBankEncoderSpec& e, int input_channels,
                                          int input_size, int latent_size) {
  core::FilterBankConfig cfg;
  cfg.input_channels = input_channels;
  cfg.input_size = input_size;
  cfg.latent_size = latent_size;
  if (e.scales_size() > 0) cfg.scales.assign(e.scales().begin(), e.scales().end());
  cfg.laplacian = e.laplacian();
  cfg.periodic = e.periodic();
  cfg.rotational = e.rotational();
  cfg.lattice = e.lattice();
  cfg.pixel_norm = e.pixel_norm();
  cfg.residual_only = e.residual_only();
  return cfg;
}

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first.empty())
      first = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message);
  }
  std::string first;
};

absl::Status Invalid(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(kManifestName, ": ", field, ": ", why));
}

bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\\') != std::string::npos) return false;
  for (const auto& part : fs::path(p)) {
    if (part == ".." || part == ".") return false;
  }
  return p != kManifestName;
}

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(),
                                       [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

// Files the encoder and denoiser specs refer to.
std::vector<std::pair<std::string, std::string>> ReferencedFiles(const v1::ModelConfig& c) {
  std::vector<std::pair<std::string, std::string>> out;
  if (c.encoder().has_torchscript())
    out.push_back({"encoder.torchscript.file", c.encoder().torchscript().file()});
  if (c.encoder().has_conv())
    out.push_back({"encoder.conv.weights_file", c.encoder().conv().weights_file()});
  if (c.encoder().has_filter_bank() && !c.encoder().filter_bank().weights_file().empty()) {
    out.push_back({"encoder.filter_bank.weights_file", c.encoder().filter_bank().weights_file()});
  }
  if (c.denoiser().has_torchscript())
    out.push_back({"denoiser.torchscript.file", c.denoiser().torchscript().file()});
  if (c.denoiser().has_dit())
    out.push_back({"denoiser.dit.weights_file", c.denoiser().dit().weights_file()});
  return out;
}

absl::StatusOr<int> ParseVersion(const std::string& name) {
  int v = 0;
  if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit) ||
      !absl::SimpleAtoi(name, &v) || v <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a version number"));
  }
  return v;
}

}  // namespace

absl::StatusOr<v1::ModelConfig> ParseManifest(std::string_view text) {
  v1::ModelConfig config;
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kManifestName, ": ", errors.first.empty() ? "parse error" : errors.first));
  }
  return config;
}

std::string FormatManifest(const v1::ModelConfig& config) {
  std::string out;
  google::protobuf::TextFormat::PrintToString(config, &out);
  return out;
}

absl::Status ValidateManifest(const v1::ModelConfig& c) {
  if (c.format_version() != kFormatVersion) {
    return Invalid(
        "format_version",
        absl::StrCat(c.format_version(), " is not supported (expected ", kFormatVersion, ")"));
  }
  // Input.
  const v1::InputSpec& in = c.input();
  if (in.channel_order() == v1::CHANNEL_ORDER_UNSPECIFIED)
    return Invalid("input.channel_order", "must be set");
  if (in.resize() == v1::RESIZE_METHOD_UNSPECIFIED) return Invalid("input.resize", "must be set");
  if (!v1::PoseMode_IsValid(in.pose()))
    return Invalid("input.pose", absl::StrCat(in.pose(), " is not a PoseMode"));
  if (absl::Status s = ToInputSpec(in).Validate(); !s.ok())
    return Invalid("input", std::string(s.message()));
  // Latent.
  const v1::LatentSpec& l = c.latent();
  if (l.channels() < 1 || l.height() < 1 || l.width() < 1 || l.channels() > 65536 ||
      l.height() > 1024 || l.width() > 1024) {
    return Invalid("latent",
                   absl::StrCat("bad shape [", l.channels(), ",", l.height(), ",", l.width(), "]"));
  }
  // Diffusion.
  const v1::DiffusionSpec& d = c.diffusion();
  if (auto s = ToNoiseSchedule(d); !s.ok())
    return Invalid("diffusion", std::string(s.status().message()));
  if (d.allowed_steps().empty())
    return Invalid("diffusion.allowed_steps", "must list at least one K");
  std::set<int> steps;
  for (int k : d.allowed_steps()) {
    if (k < 1 || k > core::kMaxInversionSteps) {
      return Invalid("diffusion.allowed_steps",
                     absl::StrCat(k, " is outside [1, ", core::kMaxInversionSteps, "]"));
    }
    if (!steps.insert(k).second)
      return Invalid("diffusion.allowed_steps", absl::StrCat(k, " is listed twice"));
  }
  if (!steps.count(d.default_steps())) {
    return Invalid("diffusion.default_steps",
                   absl::StrCat(d.default_steps(), " is not in allowed_steps"));
  }
  // Models.
  if (c.encoder().kind_case() == v1::EncoderSpec::KIND_NOT_SET)
    return Invalid("encoder", "must be torchscript, conv or filter_bank");
  if (c.denoiser().kind_case() == v1::DenoiserSpec::KIND_NOT_SET)
    return Invalid("denoiser", "must be torchscript or dit");
  if (c.encoder().has_conv()) {
    const auto& e = c.encoder().conv();
    int64_t ch = 0;
    for (int s : e.output_stages()) {
      if (s < 0 || s >= e.stage_channels_size())
        return Invalid("encoder.conv.output_stages", absl::StrCat("stage ", s, " does not exist"));
      ch += e.stage_channels(s);
    }
    if (ch != l.channels()) {
      return Invalid("encoder.conv", absl::StrCat("output stages give ", ch,
                                                  " channels, latent.channels is ", l.channels()));
    }
    if (in.width() != in.height()) return Invalid("encoder.conv", "needs a square input");
  }
  if (c.encoder().has_filter_bank()) {
    const int64_t ch =
        FilterBankConfigOf(c.encoder().filter_bank(), in.channel_order() == v1::GRAY ? 1 : 3,
                           in.width(), static_cast<int>(l.height()))
            .latent()
            .channels;
    if (ch != l.channels()) {
      return Invalid("encoder.filter_bank",
                     absl::StrCat("gives ", ch, " channels, latent.channels is ", l.channels()));
    }
    if (in.width() != in.height()) return Invalid("encoder.filter_bank", "needs a square input");
    const v1::FilterBankEncoderSpec& fb = c.encoder().filter_bank();
    if (fb.pixel_norm() && !fb.rotational())
      return Invalid("encoder.filter_bank.pixel_norm", "needs rotational");
    if (fb.pixel_norm() != !fb.weights_file().empty()) {
      return Invalid("encoder.filter_bank.weights_file",
                     "is required with pixel_norm, and only then");
    }
    if (fb.residual_only() && !fb.periodic() && !fb.rotational() && !fb.lattice())
      return Invalid("encoder.filter_bank.residual_only", "needs periodic, rotational or lattice");
  }
  const int64_t per_location = static_cast<int64_t>(l.channels()) * l.height() * l.width();
  if (l.mean_size() != l.std_size() ||
      (l.mean_size() != 0 && l.mean_size() != l.channels() && l.mean_size() != per_location)) {
    return Invalid(
        "latent.mean",
        absl::StrCat(l.mean_size(), " means and ", l.std_size(), " stds for ", l.channels(),
                     " channels (both empty, both one per channel or both "
                     "one per channel and location, ",
                     per_location, ")"));
  }
  for (int i = 0; i < l.std_size(); ++i) {
    if (!(l.std(i) > 0) || !std::isfinite(l.std(i)) || !std::isfinite(l.mean(i)))
      return Invalid("latent.std", absl::StrCat("channel ", i, ": must be finite and > 0"));
  }
  // precision FP16 is valid here; the runtime refuses it on CPU (INVALID_ARGUMENT) at load.
  // Files.
  std::set<std::string> listed;
  for (int i = 0; i < c.files_size(); ++i) {
    const v1::FileEntry& f = c.files(i);
    const std::string field = absl::StrCat("files[", i, "]");
    if (!SafeRelativePath(f.path()))
      return Invalid(field + ".path",
                     absl::StrCat("'", f.path(), "' must be a relative path inside the bundle"));
    if (!IsHex64(f.sha256())) return Invalid(field + ".sha256", "must be 64 lower-case hex digits");
    if (f.size_bytes() < 0) return Invalid(field + ".size_bytes", "must be >= 0");
    if (!listed.insert(f.path()).second)
      return Invalid(field + ".path", absl::StrCat("'", f.path(), "' is listed twice"));
  }
  for (const auto& [field, file] : ReferencedFiles(c)) {
    if (!listed.count(file))
      return Invalid(field, absl::StrCat("'", file, "' is not listed in files"));
  }
  // Calibration: every allowed K needs one, for all images or for every category.
  for (int i = 0; i < c.calibration_size(); ++i) {
    const v1::CalibrationEntry& e = c.calibration(i);
    const std::string field = absl::StrCat("calibration[", i, "]");
    if (!steps.count(e.steps()))
      return Invalid(field + ".steps", absl::StrCat(e.steps(), " is not in allowed_steps"));
    if (!(e.diff_scale() > 0) || !(e.sq_norm_scale() > 0))
      return Invalid(field, "diff_scale and sq_norm_scale must be > 0");
    if (!v1::ScoreRule_IsValid(e.score_rule()))
      return Invalid(field + ".score_rule", absl::StrCat("unknown value ", e.score_rule()));
    if (e.score_rule() == v1::MAX_NORM && !(e.max_norm_scale() > 0))
      return Invalid(field + ".max_norm_scale", "must be > 0 under score_rule MAX_NORM");
    if (e.has_position()) {
      const v1::PositionStatistics& p = e.position();
      if (p.height() != l.height() || p.width() != l.width()) {
        return Invalid(field + ".position",
                       absl::StrCat("is ", p.height(), "×", p.width(), ", the latent is ",
                                    l.height(), "×", l.width()));
      }
      const int64_t hw = static_cast<int64_t>(p.height()) * p.width();
      if (p.center_size() != hw || p.scale_size() != hw) {
        return Invalid(field + ".position",
                       absl::StrCat("needs ", hw, " center and scale values, has ", p.center_size(),
                                    " and ", p.scale_size()));
      }
      for (int j = 0; j < hw; ++j) {
        if (!std::isfinite(p.center(j)) || !(p.scale(j) > 0) || !std::isfinite(p.scale(j))) {
          return Invalid(field + ".position",
                         absl::StrCat("location ", j, ": center must be finite, scale > 0"));
        }
      }
    }
    if (e.score_rule() == v1::POSITIONAL_MAX_NORM &&
        (!e.has_position() || !(e.positional_max_scale() > 0))) {
      return Invalid(field + ".position",
                     "position and positional_max_scale > 0 are needed under score_rule "
                     "POSITIONAL_MAX_NORM");
    }
    if (!(e.target_fpr() > 0 && e.target_fpr() < 1))
      return Invalid(field + ".target_fpr", "must be in (0, 1)");
    if (!e.category().empty() && std::find(c.categories().begin(), c.categories().end(),
                                           e.category()) == c.categories().end()) {
      return Invalid(field + ".category",
                     absl::StrCat("'", e.category(), "' is not in categories"));
    }
  }
  for (int k : steps) {
    std::set<std::string> cats;
    for (const auto& e : c.calibration()) {
      if (e.steps() == k) cats.insert(e.category());
    }
    if (cats.count("")) continue;
    for (const auto& cat : c.categories()) {
      if (!cats.count(cat)) {
        return Invalid("calibration",
                       absl::StrCat("no calibration for steps=", k,
                                    (cats.empty() ? "" : absl::StrCat(", category '", cat, "'"))));
      }
    }
    if (c.categories().empty())
      return Invalid("calibration", absl::StrCat("no calibration for steps=", k));
  }
  return absl::OkStatus();
}

absl::StatusOr<Bundle> ReadBundle(const std::string& version_dir) {
  std::error_code ec;
  if (!fs::is_directory(version_dir, ec))
    return absl::NotFoundError(absl::StrCat("bundle folder not found: ", version_dir));
  const fs::path dir = fs::path(version_dir).lexically_normal();
  const fs::path clean = dir.filename().empty() ? dir.parent_path() : dir;
  Bundle b;
  b.dir = clean.string();
  auto version = ParseVersion(clean.filename().string());
  if (!version.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(version_dir, ": a bundle folder must be named by its version (1, 2, ...)"));
  }
  b.version = *version;
  b.name = clean.parent_path().filename().string();
  const std::string manifest_path = (clean / kManifestName).string();
  INVAD_ASSIGN_OR_RETURN(std::string text, ReadFile(manifest_path));
  auto config = ParseManifest(text);
  if (!config.ok())
    return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": ", config.status().message()));
  b.config = std::move(*config);
  if (absl::Status s = ValidateManifest(b.config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(b.dir, "/", s.message()));
  }
  for (const v1::FileEntry& f : b.config.files()) {
    const std::string path = (clean / f.path()).string();
    auto data = ReadFile(path);
    if (!data.ok())
      return absl::NotFoundError(
          absl::StrCat("bundle file ", path, " (files: ", f.path(), ") is missing"));
    if (static_cast<int64_t>(data->size()) != f.size_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat("bundle file ", path, " is ", data->size(),
                                                     " bytes, the manifest says ", f.size_bytes(),
                                                     " (truncated or replaced)"));
    }
    if (Sha256Hex(*data) != f.sha256()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle file ", path, " fails its sha256 checksum (corrupt or modified)"));
    }
  }
  return b;
}

absl::StatusOr<std::vector<int>> ListVersions(const std::string& model_dir) {
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec))
    return absl::NotFoundError(absl::StrCat("model folder not found: ", model_dir));
  std::vector<int> versions;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    if (!entry.is_directory()) continue;
    if (auto v = ParseVersion(entry.path().filename().string()); v.ok()) versions.push_back(*v);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

absl::StatusOr<std::string> ResolveVersionDir(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    return absl::NotFoundError(absl::StrCat("model not found: ", path));
  if (fs::exists(fs::path(path) / kManifestName, ec)) return path;
  INVAD_ASSIGN_OR_RETURN(std::vector<int> versions, ListVersions(path));
  if (versions.empty())
    return absl::NotFoundError(
        absl::StrCat(path, " has no version folders (1, 2, ...) and no ", kManifestName));
  return (fs::path(path) / std::to_string(versions.back())).string();
}

absl::StatusOr<std::string> WriteNextVersion(const std::string& model_dir, v1::ModelConfig config,
                                             const std::vector<BundleFile>& files) {
  config.set_format_version(kFormatVersion);
  config.clear_files();
  for (const BundleFile& f : files) {
    v1::FileEntry* e = config.add_files();
    e->set_path(f.path);
    e->set_size_bytes(static_cast<int64_t>(f.contents.size()));
    e->set_sha256(Sha256Hex(f.contents));
  }
  INVAD_RETURN_IF_ERROR(ValidateManifest(config));
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", model_dir, ": ", ec.message()));
  INVAD_ASSIGN_OR_RETURN(std::vector<int> versions, ListVersions(model_dir));
  const int next = versions.empty() ? 1 : versions.back() + 1;
  const fs::path tmp = fs::path(model_dir) / absl::StrCat(".tmp-", next, "-", ::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  for (const BundleFile& f : files) {
    fs::create_directories((tmp / f.path).parent_path(), ec);
    INVAD_RETURN_IF_ERROR(WriteFile((tmp / f.path).string(), f.contents));
  }
  INVAD_RETURN_IF_ERROR(WriteFile((tmp / kManifestName).string(), FormatManifest(config)));
  const fs::path final_dir = fs::path(model_dir) / std::to_string(next);
  fs::rename(tmp, final_dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("cannot publish ", final_dir.string(), ": ", ec.message()));
  return final_dir.string();
}

preprocess::InputSpec ToInputSpec(const v1::InputSpec& in) {
  preprocess::InputSpec s;
  s.width = in.width();
  s.height = in.height();
  s.order = in.channel_order() == v1::BGR    ? preprocess::ChannelOrder::kBgr
            : in.channel_order() == v1::GRAY ? preprocess::ChannelOrder::kGray
                                             : preprocess::ChannelOrder::kRgb;
  s.resize = in.resize() == v1::RESIZE_AREA       ? preprocess::ResizeMethod::kArea
             : in.resize() == v1::RESIZE_BILINEAR ? preprocess::ResizeMethod::kBilinear
                                                  : preprocess::ResizeMethod::kAntialiasBilinear;
  s.mean.assign(in.mean().begin(), in.mean().end());
  s.std.assign(in.std().begin(), in.std().end());
  s.uint16_scale = in.uint16_scale() > 0 ? in.uint16_scale() : 65535.0f;
  s.pose =
      in.pose() == v1::POSE_MOMENT ? preprocess::PoseMode::kMoment : preprocess::PoseMode::kNone;
  return s;
}

core::LatentShape ToLatentShape(const v1::LatentSpec& l) {
  return {l.channels(), l.height(), l.width()};
}

absl::StatusOr<core::NoiseSchedule> ToNoiseSchedule(const v1::DiffusionSpec& d) {
  return core::NoiseSchedule::Linear(d.num_timesteps() > 0 ? d.num_timesteps() : 1000,
                                     d.beta_start() > 0 ? d.beta_start() : 1e-4,
                                     d.beta_end() > 0 ? d.beta_end() : 0.02);
}

core::Precision ServedPrecision(v1::Precision p, const std::string& device) {
  switch (p) {
    case v1::BF16:
      return core::Precision::kBf16;
    case v1::FP16:
      return core::Precision::kFp16;
    case v1::FP32:
      return core::Precision::kFp32;
    default:  // unspecified: the device's default (method.md §4.4)
      return absl::StartsWith(device, "cuda") ? core::Precision::kBf16 : core::Precision::kFp32;
  }
}

core::Calibration ToCalibration(const v1::CalibrationEntry& e) {
  core::Calibration c;
  c.diff = {e.diff_center(), e.diff_scale()};
  c.sq_norm = {e.sq_norm_center(), e.sq_norm_scale()};
  c.max_norm = {e.max_norm_center(), e.max_norm_scale()};
  c.rule = e.score_rule() == v1::MAX_NORM              ? core::ScoreRule::kMaxNorm
           : e.score_rule() == v1::POSITIONAL_MAX_NORM ? core::ScoreRule::kPositionalMaxNorm
                                                       : core::ScoreRule::kDiffSqNorm;
  if (e.has_position()) {
    c.position.height = e.position().height();
    c.position.width = e.position().width();
    c.position.center.assign(e.position().center().begin(), e.position().center().end());
    c.position.scale.assign(e.position().scale().begin(), e.position().scale().end());
    c.positional_max = {e.positional_max_center(), e.positional_max_scale()};
  }
  c.target_fpr = e.target_fpr();
  c.image_threshold = e.image_threshold();
  c.pixel_quantile = e.pixel_quantile();
  c.pixel_threshold = e.pixel_threshold();
  c.num_images = e.num_images();
  return c;
}

v1::CalibrationEntry FromCalibration(const core::Calibration& c, int steps,
                                     const std::string& category) {
  v1::CalibrationEntry e;
  e.set_steps(steps);
  e.set_category(category);
  e.set_diff_center(c.diff.center);
  e.set_diff_scale(c.diff.scale);
  e.set_sq_norm_center(c.sq_norm.center);
  e.set_sq_norm_scale(c.sq_norm.scale);
  e.set_score_rule(c.rule == core::ScoreRule::kMaxNorm             ? v1::MAX_NORM
                   : c.rule == core::ScoreRule::kPositionalMaxNorm ? v1::POSITIONAL_MAX_NORM
                                                                   : v1::DIFF_SQ_NORM);
  e.set_max_norm_center(c.max_norm.center);
  e.set_max_norm_scale(c.max_norm.scale);
  if (!c.position.empty()) {
    v1::PositionStatistics* p = e.mutable_position();
    p->set_height(static_cast<int32_t>(c.position.height));
    p->set_width(static_cast<int32_t>(c.position.width));
    p->mutable_center()->Add(c.position.center.begin(), c.position.center.end());
    p->mutable_scale()->Add(c.position.scale.begin(), c.position.scale.end());
    e.set_positional_max_center(c.positional_max.center);
    e.set_positional_max_scale(c.positional_max.scale);
  }
  e.set_target_fpr(c.target_fpr);
  e.set_image_threshold(c.image_threshold);
  e.set_pixel_quantile(c.pixel_quantile);
  e.set_pixel_threshold(c.pixel_threshold);
  e.set_num_images(c.num_images);
  e.set_fpr_resolution(c.fpr_resolution());
  return e;
}

absl::StatusOr<core::Calibration> FindCalibration(const v1::ModelConfig& config, int steps,
                                                  const std::string& category) {
  const v1::CalibrationEntry* fallback = nullptr;
  for (const auto& e : config.calibration()) {
    if (e.steps() != steps) continue;
    if (e.category() == category) return ToCalibration(e);
    if (e.category().empty()) fallback = &e;
  }
  if (fallback) return ToCalibration(*fallback);
  if (!category.empty() && std::find(config.categories().begin(), config.categories().end(),
                                     category) == config.categories().end()) {
    return absl::NotFoundError(absl::StrCat("unknown category '", category, "'"));
  }
  return absl::InvalidArgumentError(absl::StrCat("no calibration for steps=", steps));
}

absl::StatusOr<std::unique_ptr<core::Pipeline>> BuildPipeline(const v1::ModelConfig& c,
                                                              const std::string& dir,
                                                              const std::string& device) {
  const preprocess::InputSpec input = ToInputSpec(c.input());
  const core::LatentShape latent = ToLatentShape(c.latent());
  const core::RuntimeOptions runtime{device, ServedPrecision(c.precision(), device)};
  const core::RuntimeOptions encoder_runtime{device,
                                             core::Precision::kFp32};  // the encoder runs fp32
  auto file = [&](const std::string& rel) { return (fs::path(dir) / rel).string(); };

  std::unique_ptr<core::Encoder> encoder;
  if (c.encoder().has_torchscript()) {
    const core::EncoderIo io{input.channels(), input.height, input.width, latent};
    INVAD_ASSIGN_OR_RETURN(
        encoder,
        core::LoadTorchScriptEncoder(file(c.encoder().torchscript().file()), io, encoder_runtime));
  } else if (c.encoder().has_filter_bank()) {
    const v1::FilterBankEncoderSpec& fb = c.encoder().filter_bank();
    core::NamedTensors w;
    if (!fb.weights_file().empty()) {
      INVAD_ASSIGN_OR_RETURN(w, ReadSafetensors(file(fb.weights_file())));
    }
    INVAD_ASSIGN_OR_RETURN(
        encoder, core::CreateFilterBankEncoder(FilterBankConfigOf(fb, input.channels(), input.width,
                                                                  static_cast<int>(latent.height)),
                                               encoder_runtime, w));
  } else {
    const auto& e = c.encoder().conv();
    core::ConvEncoderConfig cfg;
    cfg.input_channels = input.channels();
    cfg.input_size = input.width;
    cfg.stage_channels.assign(e.stage_channels().begin(), e.stage_channels().end());
    cfg.output_stages.assign(e.output_stages().begin(), e.output_stages().end());
    cfg.latent_size = static_cast<int>(latent.height);
    INVAD_ASSIGN_OR_RETURN(core::NamedTensors w, ReadSafetensors(file(e.weights_file())));
    INVAD_ASSIGN_OR_RETURN(encoder, core::CreateNativeConvEncoder(cfg, w, encoder_runtime));
  }
  if (c.latent().mean_size() > 0) {
    core::LatentNorm norm;
    norm.mean.assign(c.latent().mean().begin(), c.latent().mean().end());
    norm.std.assign(c.latent().std().begin(), c.latent().std().end());
    INVAD_ASSIGN_OR_RETURN(encoder, core::WithLatentNorm(std::move(encoder), std::move(norm)));
  }
  std::unique_ptr<core::Denoiser> denoiser;
  if (c.denoiser().has_torchscript()) {
    INVAD_ASSIGN_OR_RETURN(denoiser, core::LoadTorchScriptDenoiser(
                                         file(c.denoiser().torchscript().file()), latent, runtime));
  } else {
    const auto& d = c.denoiser().dit();
    core::DitConfig cfg;
    cfg.latent = latent;
    cfg.patch_size = d.patch_size() > 0 ? d.patch_size() : 1;
    cfg.hidden_size = d.hidden_size();
    cfg.depth = d.depth();
    cfg.num_heads = d.num_heads();
    if (d.mlp_ratio_x100() > 0) cfg.mlp_ratio_x100 = d.mlp_ratio_x100();
    if (d.frequency_embedding_size() > 0)
      cfg.frequency_embedding_size = d.frequency_embedding_size();
    INVAD_ASSIGN_OR_RETURN(core::NamedTensors w, ReadSafetensors(file(d.weights_file())));
    INVAD_ASSIGN_OR_RETURN(denoiser, core::CreateNativeDit(cfg, w, runtime));
  }
  INVAD_ASSIGN_OR_RETURN(core::NoiseSchedule schedule, ToNoiseSchedule(c.diffusion()));
  const std::vector<int> steps(c.diffusion().allowed_steps().begin(),
                               c.diffusion().allowed_steps().end());
  const core::ScheduleMode mode = c.diffusion().schedule() == v1::SCHEDULE_PAPER
                                      ? core::ScheduleMode::kPaper
                                      : core::ScheduleMode::kCode;
  return core::Pipeline::Create(std::move(encoder), std::move(denoiser), schedule, steps, mode);
}

absl::StatusOr<LoadedModel> LoadModel(const std::string& path, const std::string& device) {
  INVAD_ASSIGN_OR_RETURN(std::string dir, ResolveVersionDir(path));
  LoadedModel m;
  INVAD_ASSIGN_OR_RETURN(m.bundle, ReadBundle(dir));
  m.input = ToInputSpec(m.bundle.config.input());
  INVAD_ASSIGN_OR_RETURN(m.pipeline, BuildPipeline(m.bundle.config, m.bundle.dir, device));
  return m;
}

}  // namespace invad::bundle

#include "tools/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <utility>

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "bundle/bundle.h"
#include "bundle/files.h"
#include "bundle/safetensors.h"
#include "core/base/status_macros.h"
#include "core/model/calibrate.h"
#include "core/model/model.h"
#include "core/runtime/native.h"
#include "core/runtime/runtime.h"
#include "core/train/denoiser_trainer.h"
#include "core/train/encoder_trainer.h"
#include "preprocess/preprocess.h"
#include "tools/common/dataset.h"
#include "tools/common/progress.h"

namespace invad::tools {
namespace {

// The bundle file of core::FitPixelStats's tensors (filter_bank.pixel_norm).
constexpr char kPixelStatsFile[] = "encoder_pixel_stats.safetensors";

namespace fs = std::filesystem;
using core::Tensor;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void Log(const TrainOptions& o, const std::string& line) {
  if (o.progress) std::fprintf(stderr, "%s\n", line.c_str());
}

absl::Status Validate(const TrainOptions& o) {
  auto bad = [](const std::string& msg) { return absl::InvalidArgumentError(msg); };
  if (o.data.empty()) return bad("--data is required (repeatable)");
  if (o.out.empty() && !o.calibrate_only) return bad("--out (a model folder) is required");
  if (o.calibrate_only && o.model.empty()) return bad("--calibrate_only needs --model");
  if (!o.position_data.empty() && !o.calibrate_only)
    return bad("--position_data is for --calibrate_only (training uses its training images)");
  if (o.max_position_images < 2) return bad("--max_position_images must be >= 2");
  if (o.image_size < 16 || o.image_size > 4096) return bad("--image_size must be in [16, 4096]");
  if (o.channels != "rgb" && o.channels != "gray") return bad("--channels must be rgb or gray");
  static const std::set<std::string> kEncoders{"conv_ae", "conv_random", "filter_bank",
                                               "torchscript"};
  if (!kEncoders.count(o.encoder)) {
    return bad(absl::StrCat("--encoder ", o.encoder,
                            ": must be conv_ae, conv_random, filter_bank or torchscript"));
  }
  if (o.encoder == "torchscript" && (o.encoder_file.empty() || o.latent_channels < 1))
    return bad("--encoder torchscript needs --encoder_file and --latent_channels");
  if (o.latent_size < 1 || o.image_size % o.latent_size != 0)
    return bad("--latent_size must divide --image_size");
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"filter_laplacian", o.filter_laplacian},
           {"filter_periodic", o.filter_periodic},
           {"filter_residual_only", o.filter_residual_only},
           {"filter_rotational", o.filter_rotational},
           {"filter_lattice", o.filter_lattice},
           {"filter_pixel_norm", o.filter_pixel_norm}}) {
    if (value != "auto" && value != "true" && value != "false")
      return bad(absl::StrCat("--", flag, " ", value, ": must be auto, true or false"));
  }
  if (o.pose != "auto" && o.pose != "none" && o.pose != "moment")
    return bad(absl::StrCat("--pose ", o.pose, ": must be auto, none or moment"));
  const int given = (o.steps > 0) + (o.epochs > 0) + (o.time_budget > 0);
  if (given > 1) return bad("give at most one of --steps, --epochs, --time_budget");
  if (o.steps < 0 || o.epochs < 0 || o.time_budget < 0)
    return bad("--steps, --epochs and --time_budget must be >= 0");
  if (o.batch_size < 1) return bad("--batch_size must be >= 1");
  if (!(o.val_fraction > 0 && o.val_fraction < 1)) return bad("--val_fraction must be in (0, 1)");
  if (o.min_val < 2) return bad("--min_val must be >= 2");
  if (o.allowed_steps.empty()) return bad("--allowed_steps is empty");
  if (std::find(o.allowed_steps.begin(), o.allowed_steps.end(), o.default_steps) ==
      o.allowed_steps.end()) {
    return bad(absl::StrCat("--default_steps ", o.default_steps, " is not in --allowed_steps"));
  }
  if (!(o.target_fpr > 0 && o.target_fpr < 1)) return bad("--target_fpr must be in (0, 1)");
  if (auto rule = core::ParseScoreRule(o.score_rule); !rule.ok())
    return bad(absl::StrCat("--", rule.status().message()));
  if (o.checkpoint_every < 0 || o.stop_after_steps < 0)
    return bad("--checkpoint_every and --stop_after_steps must be >= 0");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Data

struct Item {
  std::string path, category;
};

// Loads `items` through the bundle's preprocessing. Unreadable files are skipped with a message
// naming each; `kept` receives the loaded ones in order.
Tensor LoadImages(const std::vector<Item>& items, const preprocess::InputSpec& spec,
                  const TrainOptions& o, const std::string& what, std::vector<Item>* kept,
                  int* skipped) {
  const int64_t per = static_cast<int64_t>(spec.channels()) * spec.height * spec.width;
  std::vector<float> data;
  data.reserve(items.size() * per);
  ProgressBar bar("load " + what, static_cast<int>(items.size()));
  int done = 0;
  for (const Item& it : items) {
    auto t = preprocess::PreprocessFile(it.path, spec);
    if (!t.ok()) {
      std::fprintf(stderr, "skipping unreadable image %s: %s\n", it.path.c_str(),
                   std::string(t.status().message()).c_str());
      ++*skipped;
    } else {
      data.insert(data.end(), t->data(), t->data() + per);
      kept->push_back(it);
    }
    if (o.progress) bar.Update(++done);
  }
  const int64_t n = static_cast<int64_t>(kept->size());
  return Tensor({n, spec.channels(), spec.height, spec.width}, std::move(data));
}

// Per category: shuffled by seed, the first max(min_val, ⌈fraction·n⌉) are held out.
absl::Status SplitHoldOut(const std::vector<Item>& all, const TrainOptions& o,
                          std::vector<Item>* train, std::vector<Item>* val) {
  std::map<std::string, std::vector<Item>> by_cat;
  for (const Item& it : all) by_cat[it.category].push_back(it);
  for (auto& [cat, items] : by_cat) {
    const int n = static_cast<int>(items.size());
    const int n_val = std::max(o.min_val, static_cast<int>(std::ceil(o.val_fraction * n)));
    const std::string name = cat.empty() ? "the flat image set" : "category '" + cat + "'";
    if (n - n_val < 1) {
      return absl::FailedPreconditionError(
          absl::StrCat(name, " has ", n, " normal images; ", n_val,
                       " are held out for calibration, so none is left to train on (need at least ",
                       n_val + 1, ")"));
    }
    std::mt19937_64 rng(o.seed ^ std::hash<std::string>{}(cat));
    std::shuffle(items.begin(), items.end(), rng);
    val->insert(val->end(), items.begin(), items.begin() + n_val);
    train->insert(train->end(), items.begin() + n_val, items.end());
  }
  return absl::OkStatus();
}

std::vector<std::string> Categories(const std::vector<Item>& items) {
  std::set<std::string> s;
  for (const Item& it : items) {
    if (!it.category.empty()) s.insert(it.category);
  }
  return {s.begin(), s.end()};
}

struct PoseStudy {
  double part_fraction = 0;   // of the images in which NormalisePose found one part
  double variance_ratio = 1;  // TotalVariance of the images, canonical / as loaded
  Tensor canonical;           // the images, pose-normalised
};

// Σ over 8×8-pixel blocks of the variance across images [N, C, H, W] of each block's mean. Block
// means, not pixels: resampling (the pose warp) smooths pixel noise, which must not count as the
// images becoming more alike.
double TotalVariance(const Tensor& images) {
  constexpr int64_t kBlock = 8;
  const int64_t n = images.batch(), ch = images.dim(1), h = images.dim(2), w = images.dim(3);
  const int64_t bh = std::max<int64_t>(1, h / kBlock), bw = std::max<int64_t>(1, w / kBlock);
  const int64_t sy = h / bh, sx = w / bw, per = ch * bh * bw;
  std::vector<double> sum(static_cast<size_t>(per), 0.0), sq(static_cast<size_t>(per), 0.0);
  std::vector<double> block(static_cast<size_t>(per));
  for (int64_t i = 0; i < n; ++i) {
    const float* x = images.sample(i);
    std::fill(block.begin(), block.end(), 0.0);
    for (int64_t c = 0; c < ch; ++c) {
      for (int64_t y = 0; y < bh * sy; ++y) {
        for (int64_t xx = 0; xx < bw * sx; ++xx)
          block[(c * bh + y / sy) * bw + xx / sx] += x[(c * h + y) * w + xx];
      }
    }
    for (int64_t j = 0; j < per; ++j) {
      const double m = block[j] / static_cast<double>(sy * sx);
      sum[j] += m;
      sq[j] += m * m;
    }
  }
  double total = 0;
  for (int64_t j = 0; j < per; ++j) total += std::max(0.0, sq[j] / n - (sum[j] / n) * (sum[j] / n));
  return total;
}

absl::StatusOr<PoseStudy> StudyPose(const Tensor& images) {
  PoseStudy st;
  Tensor& canonical = st.canonical;
  canonical = Tensor({images.batch(), images.dim(1), images.dim(2), images.dim(3)});
  std::copy(images.data(), images.data() + images.numel(), canonical.data());
  int parts = 0;
  for (int64_t i = 0; i < canonical.batch(); ++i) {
    INVAD_ASSIGN_OR_RETURN(
        const preprocess::Pose pose,
        preprocess::NormalisePose(canonical.sample(i), static_cast<int>(canonical.dim(1)),
                                  static_cast<int>(canonical.dim(3)),
                                  static_cast<int>(canonical.dim(2))));
    parts += pose.applied;
  }
  st.part_fraction =
      static_cast<double>(parts) / static_cast<double>(std::max<int64_t>(1, images.batch()));
  const double before = TotalVariance(images);
  st.variance_ratio = before > 0 ? TotalVariance(canonical) / before : 1.0;
  return st;
}

v1::InputSpec MakeInputSpec(const TrainOptions& o) {
  v1::InputSpec in;
  in.set_width(o.image_size);
  in.set_height(o.image_size);
  in.set_resize(v1::RESIZE_ANTIALIAS_BILINEAR);
  in.set_uint16_scale(65535);
  if (o.channels == "gray") {
    in.set_channel_order(v1::GRAY);
    in.add_mean(0.449f);
    in.add_std(0.226f);
  } else {
    in.set_channel_order(v1::RGB);
    for (float m : {0.485f, 0.456f, 0.406f}) in.add_mean(m);
    for (float s : {0.229f, 0.224f, 0.225f}) in.add_std(s);
  }
  return in;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: <out>/.checkpoint/{run.txt, encoder.safetensors, denoiser.safetensors}

struct RunRecord {
  std::string fingerprint;
  int encoder_steps = 0;
  int denoiser_steps = 0;
  double timed_step_ms = 0;
};

std::string FormatRun(const RunRecord& r) {
  return absl::StrFormat(
      "fingerprint %s\nencoder_steps %d\ndenoiser_steps %d\ntimed_step_ms %.6f\n", r.fingerprint,
      r.encoder_steps, r.denoiser_steps, r.timed_step_ms);
}

RunRecord ParseRun(const std::string& text) {
  RunRecord r;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.size() != 2) continue;
    if (kv[0] == "fingerprint") r.fingerprint = kv[1];
    if (kv[0] == "encoder_steps") (void)absl::SimpleAtoi(kv[1], &r.encoder_steps);
    if (kv[0] == "denoiser_steps") (void)absl::SimpleAtoi(kv[1], &r.denoiser_steps);
    if (kv[0] == "timed_step_ms") (void)absl::SimpleAtod(kv[1], &r.timed_step_ms);
  }
  return r;
}

// Everything that determines the trained weights, except the step counts a time budget resolves.
std::string Fingerprint(const TrainOptions& o, const std::vector<Item>& train) {
  std::string s = absl::StrCat(
      "size=", o.image_size, ";ch=", o.channels, ";enc=", o.encoder, ";encf=", o.encoder_file,
      ";lc=", o.latent_channels, ";ls=", o.latent_size, ";cc=", absl::StrJoin(o.conv_channels, ","),
      ";co=", absl::StrJoin(o.conv_outputs, ","), ";fs=", absl::StrJoin(o.filter_scales, ","),
      ";flap=", o.filter_laplacian, ";fper=", o.filter_periodic, ";frot=", o.filter_rotational,
      ";flat=", o.filter_lattice, ";fpix=", o.filter_pixel_norm, ";fres=", o.filter_residual_only,
      ";pose=", o.pose, ";es=", o.encoder_steps, ";norm=", o.normalize_latent, "/",
      o.normalize_latent_per_location, ";dit=", o.dit_hidden, "/", o.dit_depth, "/", o.dit_heads,
      "/", o.dit_patch, ";steps=", o.steps, ";epochs=", o.epochs, ";budget=", o.time_budget,
      ";bs=", o.batch_size, ";lr=", o.lr, ";seed=", o.seed, ";vf=", o.val_fraction,
      ";mv=", o.min_val, ";files=");
  for (const Item& it : train) absl::StrAppend(&s, it.category, "/", it.path, ";");
  return bundle::Sha256Hex(s);
}

core::NamedTensors Unprefixed(const core::NamedTensors& in, const std::string& prefix) {
  core::NamedTensors out;
  for (const auto& [k, v] : in) {
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  }
  return out;
}

std::string SerializeState(const core::DenoiserTrainState& st) {
  core::NamedTensors all;
  for (auto& [p, t] : {std::pair<const char*, const core::NamedTensors*>{"w/", &st.weights},
                       {"ema/", &st.ema_weights},
                       {"m/", &st.adam_m},
                       {"v/", &st.adam_v}}) {
    for (const auto& [k, v] : *t) all[p + k] = v;
  }
  std::vector<float> losses(st.losses.begin(), st.losses.end());
  all["losses"] = core::ToRaw(Tensor({static_cast<int64_t>(losses.size())}, losses));
  all["step"] = core::ToRaw(Tensor({1}, {static_cast<float>(st.step)}));
  return bundle::SerializeSafetensors(all);
}

absl::StatusOr<core::DenoiserTrainState> ReadState(const std::string& path) {
  INVAD_ASSIGN_OR_RETURN(core::NamedTensors all, bundle::ReadSafetensors(path));
  core::DenoiserTrainState st;
  st.weights = Unprefixed(all, "w/");
  st.ema_weights = Unprefixed(all, "ema/");
  st.adam_m = Unprefixed(all, "m/");
  st.adam_v = Unprefixed(all, "v/");
  auto step = all.find("step");
  auto losses = all.find("losses");
  if (step == all.end() || losses == all.end() || step->second.bytes.size() != 4)
    return absl::DataLossError(absl::StrCat("checkpoint ", path, " lacks step or losses"));
  float f;
  std::memcpy(&f, step->second.bytes.data(), 4);
  st.step = static_cast<int>(f);
  const size_t n = losses->second.bytes.size() / 4;
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(&f, losses->second.bytes.data() + 4 * i, 4);
    st.losses.push_back(f);
  }
  return st;
}

// ---------------------------------------------------------------------------------------------
// Calibration

// The images of group `g` ("" = all) in `images` [N, ...], with their indices; at most
// `max_images` of them (0 = all), evenly spaced over the group.
Tensor GroupImages(const Tensor& images, const std::vector<Item>& items, const std::string& g,
                   std::vector<int64_t>* idx, int max_images = 0) {
  idx->clear();
  for (size_t i = 0; i < items.size(); ++i) {
    if (g.empty() || items[i].category == g) idx->push_back(static_cast<int64_t>(i));
  }
  if (max_images > 0 && idx->size() > static_cast<size_t>(max_images)) {
    std::vector<int64_t> picked;
    for (int j = 0; j < max_images; ++j) picked.push_back((*idx)[j * idx->size() / max_images]);
    *idx = std::move(picked);
  }
  Tensor sub({static_cast<int64_t>(idx->size()), images.dim(1), images.dim(2), images.dim(3)});
  for (size_t j = 0; j < idx->size(); ++j) {
    std::copy_n(images.sample((*idx)[j]), images.sample_numel(), sub.sample(j));
  }
  return sub;
}

// Calibrates every allowed K on `images`, pooled (category "") and per category; replaces the
// entries of `config`. Position statistics per group: fitted on that group's `reference` images
// (normal images other than `images`: the training images, or --position_data; at most
// o.max_position_images of them) when it has at least 2, else the ones `config` already holds for
// that group and K (a source bundle's). Metadata `position_images`: how many the pooled group used.
absl::Status CalibrateInto(core::Pipeline& pipeline, const Tensor& images,
                           const std::vector<Item>& items, const Tensor& reference,
                           const std::vector<Item>& reference_items, const TrainOptions& o,
                           v1::ModelConfig* config) {
  const std::vector<int> steps(config->diffusion().allowed_steps().begin(),
                               config->diffusion().allowed_steps().end());
  core::CalibrationOptions co;
  co.target_fpr = o.target_fpr;
  co.pixel_quantile = o.pixel_quantile;
  INVAD_ASSIGN_OR_RETURN(co.rule, core::ParseScoreRule(o.score_rule));
  std::vector<std::string> groups{""};
  for (const std::string& c : Categories(items)) groups.push_back(c);
  std::map<std::string, std::map<int, core::PositionStats>> source;
  for (const v1::CalibrationEntry& e : config->calibration()) {
    if (e.has_position()) source[e.category()][e.steps()] = bundle::ToCalibration(e).position;
  }
  config->clear_calibration();
  for (const std::string& g : groups) {
    std::vector<int64_t> idx, ref_idx;
    const Tensor sub = GroupImages(images, items, g, &idx);
    if (idx.size() < 2) {
      return absl::FailedPreconditionError(
          absl::StrCat("calibration of '", g, "': ", idx.size(), " image(s); need at least 2"));
    }
    Tensor ref;
    if (!reference.empty()) {
      ref = GroupImages(reference, reference_items, g, &ref_idx, o.max_position_images);
      if (ref_idx.size() < 2) ref = Tensor();
      if (g.empty() && !ref.empty())
        (*config->mutable_metadata())["position_images"] = absl::StrCat(ref_idx.size());
    }
    if (ref.empty() && !source.count(g) && co.rule == core::ScoreRule::kPositionalMaxNorm) {
      return absl::InvalidArgumentError(absl::StrCat(
          "score rule positional_max_norm: no position statistics for '", g,
          "' (the model has none; give normal images for them with --position_data, e.g. its "
          "training images, or choose --score_rule max_norm)"));
    }
    const auto t0 = Clock::now();
    INVAD_ASSIGN_OR_RETURN(std::vector<core::StepsCalibration> cals,
                           core::CalibratePipeline(pipeline, sub, steps, co, 16, ref, source[g]));
    for (const core::StepsCalibration& c : cals) {
      *config->add_calibration() = bundle::FromCalibration(c.calibration, c.steps, g);
    }
    Log(o,
        absl::StrFormat("calibrated %s on %d normal images%s, K = %s (%.1f s)",
                        g.empty() ? "all categories" : "'" + g + "'", idx.size(),
                        ref.empty() ? "" : absl::StrFormat(" (positions: %d more)", ref_idx.size()),
                        absl::StrJoin(steps, ","), Since(t0)));
    if (idx.size() < std::ceil(1.0 / o.target_fpr)) {
      std::fprintf(stderr,
                   "note: %zu held-out images resolve a false-positive rate of 1/%zu = %.3g; a "
                   "target of %g needs at least %d (recorded as fpr_resolution)\n",
                   idx.size(), idx.size(), 1.0 / idx.size(), o.target_fpr,
                   static_cast<int>(std::ceil(1.0 / o.target_fpr)));
    }
  }
  return absl::OkStatus();
}

std::string Today() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Writes `files` and the manifest (without calibration) into a staging folder, so the pipeline is
// built by the same code that loads bundles.
absl::StatusOr<std::unique_ptr<core::Pipeline>> StagePipeline(
    const std::string& staging, const v1::ModelConfig& config,
    const std::vector<bundle::BundleFile>& files, const std::string& device) {
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", staging, ": ", ec.message()));
  for (const bundle::BundleFile& f : files) {
    INVAD_RETURN_IF_ERROR(bundle::WriteFile((fs::path(staging) / f.path).string(), f.contents));
  }
  return bundle::BuildPipeline(config, staging, device);
}

absl::StatusOr<std::vector<Item>> FindAll(const std::vector<std::string>& folders) {
  std::vector<Item> all;
  for (const std::string& d : folders) {
    INVAD_ASSIGN_OR_RETURN(std::vector<TrainImage> imgs, FindTrainImages(d));
    for (TrainImage& t : imgs) all.push_back({std::move(t.path), std::move(t.category)});
  }
  return all;
}

absl::StatusOr<TrainReport> CalibrateOnly(const TrainOptions& o) {
  const auto t0 = Clock::now();
  INVAD_ASSIGN_OR_RETURN(bundle::LoadedModel m, bundle::LoadModel(o.model, o.device));
  INVAD_ASSIGN_OR_RETURN(std::vector<Item> all, FindAll(o.data));
  INVAD_ASSIGN_OR_RETURN(std::vector<Item> ref_all, FindAll(o.position_data));
  std::vector<Item> kept, ref_kept;
  TrainReport report;
  const Tensor images = LoadImages(all, m.input, o, "calibration", &kept, &report.skipped_files);
  if (kept.size() < 2)
    return absl::FailedPreconditionError("fewer than 2 readable calibration images");
  Tensor reference;
  if (!ref_all.empty()) {
    reference = LoadImages(ref_all, m.input, o, "position", &ref_kept, &report.skipped_files);
    if (ref_kept.size() < 2)
      return absl::FailedPreconditionError("fewer than 2 readable --position_data images");
  }
  v1::ModelConfig config = m.bundle.config;
  INVAD_RETURN_IF_ERROR(CalibrateInto(*m.pipeline, images, kept, reference, ref_kept, o, &config));
  for (const std::string& c : Categories(kept)) {
    if (std::find(config.categories().begin(), config.categories().end(), c) ==
        config.categories().end())
      config.add_categories(c);
  }
  (*config.mutable_metadata())["recalibrated_from_version"] = absl::StrCat(m.bundle.version);
  (*config.mutable_metadata())["recalibration_data"] = absl::StrJoin(o.data, " ");
  if (!o.position_data.empty())
    (*config.mutable_metadata())["position_data"] = absl::StrJoin(o.position_data, " ");
  (*config.mutable_metadata())["recalibrated_at"] = Today();
  std::vector<bundle::BundleFile> files;
  for (const v1::FileEntry& f : m.bundle.config.files()) {
    INVAD_ASSIGN_OR_RETURN(std::string bytes,
                           bundle::ReadFile((fs::path(m.bundle.dir) / f.path()).string()));
    files.push_back({f.path(), std::move(bytes)});
  }
  config.clear_files();
  const std::string out = !o.out.empty() ? o.out : fs::path(m.bundle.dir).parent_path().string();
  INVAD_ASSIGN_OR_RETURN(report.version_dir, bundle::WriteNextVersion(out, config, files));
  report.val_images = static_cast<int>(kept.size());
  report.total_seconds = Since(t0);
  return report;
}

}  // namespace

absl::StatusOr<TrainReport> RunTraining(const TrainOptions& o) {
  INVAD_RETURN_IF_ERROR(Validate(o));
  INVAD_RETURN_IF_ERROR(core::ConfigureProcess(o.threads));
  if (o.calibrate_only) return CalibrateOnly(o);
  const auto t_start = Clock::now();
  TrainReport report;

  // 1. Data.
  INVAD_ASSIGN_OR_RETURN(std::vector<Item> all, FindAll(o.data));
  std::vector<Item> train_items, val_items;
  INVAD_RETURN_IF_ERROR(SplitHoldOut(all, o, &train_items, &val_items));
  v1::InputSpec input = MakeInputSpec(o);
  const preprocess::InputSpec spec = bundle::ToInputSpec(input);
  std::vector<Item> train_kept, val_kept;
  Tensor train_images =
      LoadImages(train_items, spec, o, "train", &train_kept, &report.skipped_files);
  Tensor val_images = LoadImages(val_items, spec, o, "hold-out", &val_kept, &report.skipped_files);
  if (train_kept.empty())
    return absl::FailedPreconditionError("no readable training images are left");
  if (val_kept.size() < 2)
    return absl::FailedPreconditionError("fewer than 2 readable held-out images are left");
  report.train_images = static_cast<int>(train_kept.size());
  report.val_images = static_cast<int>(val_kept.size());
  const std::vector<std::string> categories = Categories(all);
  Log(o, absl::StrFormat("%d training and %d held-out normal images, %d categor%s",
                         report.train_images, report.val_images, categories.size(),
                         categories.size() == 1 ? "y" : "ies"));

  // Pose normalisation: decided on the training images, applied to both splits in place (what
  // Preprocess does when the manifest asks for it).
  std::map<std::string, std::string> pose_metadata;
  bool pose = o.pose == "moment";
  if (o.pose == "auto") {
    INVAD_ASSIGN_OR_RETURN(PoseStudy study, StudyPose(train_images));
    pose = study.part_fraction >= kPosePartFraction && study.variance_ratio <= kPoseVarianceRatio;
    if (pose) train_images = std::move(study.canonical);  // normalised already
    pose_metadata["pose_part_fraction"] = absl::StrFormat("%.3f", study.part_fraction);
    pose_metadata["pose_variance_ratio"] = absl::StrFormat("%.3f", study.variance_ratio);
    Log(o, absl::StrFormat("pose: one part in %.0f%% of the training images; the canonical pose "
                           "leaves %.2f of their variance: pose normalisation %s",
                           100 * study.part_fraction, study.variance_ratio, pose ? "on" : "off"));
  }
  if (pose) {
    input.set_pose(v1::POSE_MOMENT);
    std::vector<Tensor*> todo{&val_images};
    if (o.pose == "moment") todo.push_back(&train_images);
    for (Tensor* t : todo) {
      for (int64_t i = 0; i < t->batch(); ++i) {
        INVAD_RETURN_IF_ERROR(
            preprocess::NormalisePose(t->sample(i), spec.channels(), spec.width, spec.height)
                .status());
      }
    }
  }

  // Checkpoint folder and the run record.
  const fs::path ckdir = fs::path(o.out) / ".checkpoint";
  RunRecord run;
  run.fingerprint = Fingerprint(o, train_kept);
  bool resuming = false;
  if (auto text = bundle::ReadFile((ckdir / "run.txt").string()); text.ok()) {
    RunRecord prev = ParseRun(*text);
    if (o.resume) {
      if (prev.fingerprint != run.fingerprint) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the checkpoint in ", ckdir.string(),
            " was made with other data or options; run without --resume to start over"));
      }
      run = prev;
      resuming = true;
      Log(o, "resuming from " + ckdir.string());
    } else {
      Log(o,
          "starting over (a checkpoint exists in " + ckdir.string() + "; --resume continues it)");
    }
  } else if (o.resume) {
    Log(o, "no checkpoint in " + ckdir.string() + "; starting from the beginning");
  }
  if (!resuming) {
    std::error_code ec;
    fs::remove_all(ckdir, ec);
    fs::create_directories(ckdir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", ckdir.string()));
  }
  auto save_run = [&] { return bundle::WriteFile((ckdir / "run.txt").string(), FormatRun(run)); };
  INVAD_RETURN_IF_ERROR(save_run());

  // 2. Encoder.
  v1::ModelConfig config;
  config.set_format_version(1);
  config.set_name(fs::path(o.out).filename().string());
  config.set_description(o.description);
  *config.mutable_input() = input;
  for (const auto& [k, v] : pose_metadata) (*config.mutable_metadata())[k] = v;
  std::vector<bundle::BundleFile> files;
  const core::RuntimeOptions enc_rt{o.device, core::Precision::kFp32};
  std::unique_ptr<core::Encoder> encoder;
  const auto t_train = Clock::now();
  if (o.encoder == "filter_bank") {
    core::FilterBankConfig fc;
    fc.input_channels = spec.channels();
    fc.input_size = o.image_size;
    fc.latent_size = o.latent_size;
    fc.scales = o.filter_scales;
    if (o.filter_rotational == "auto") {
      INVAD_ASSIGN_OR_RETURN(const double roundness, core::ForegroundRoundness(train_images));
      fc.rotational = roundness >= core::kRoundPartThreshold;
      (*config.mutable_metadata())["foreground_roundness"] = absl::StrFormat("%.3f", roundness);
      Log(o, absl::StrFormat("foreground roundness %.3f (median IoU with a 20-degree turn): "
                             "rotational channels %s",
                             roundness, fc.rotational ? "on" : "off"));
    } else {
      fc.rotational = o.filter_rotational == "true";
    }
    std::vector<core::Lattice> lattices;  // the training images', found once where auto needs them
    if (o.filter_lattice == "auto" ||
        (o.filter_residual_only == "auto" && o.filter_lattice == "true")) {
      INVAD_ASSIGN_OR_RETURN(lattices, core::FindLattices(train_images));
    }
    if (o.filter_lattice == "auto") {
      const double fraction = core::LatticeFraction(lattices);
      fc.lattice = fraction >= core::kLatticeFraction;
      (*config.mutable_metadata())["lattice_fraction"] = absl::StrFormat("%.3f", fraction);
      Log(o, absl::StrFormat("a lattice in %.0f%% of the training images: lattice channels %s",
                             100 * fraction, fc.lattice ? "on" : "off"));
    } else {
      fc.lattice = o.filter_lattice == "true";
    }
    if (o.filter_pixel_norm == "auto") {
      fc.pixel_norm = fc.rotational && pose;
      (*config.mutable_metadata())["pixel_norm"] = fc.pixel_norm ? "on" : "off";
      Log(o, absl::StrFormat("pixel-standardised channels %s (rotational channels %s, pose "
                             "normalisation %s)",
                             fc.pixel_norm ? "on" : "off", fc.rotational ? "on" : "off",
                             pose ? "on" : "off"));
    } else {
      fc.pixel_norm = o.filter_pixel_norm == "true";
    }
    // Residual channels only, where a residual already holds what is left of the normal image at
    // pixel resolution: a lattice finer than a latent cell (every cell holds a period or more, so
    // its derivative statistics and mean/SD swing with the pattern's phase, and the Laplacian
    // with the pattern's edges), or a round part in a canonical pose with the pixel-standardised
    // channels (the cell statistics follow its rims, ripple and pose marker, which the rotational
    // residual cancels and each pixel's own normal spread absorbs). The other channels then only
    // dilute a latent location's norm (docs/accuracy.md, "Residual channels only").
    if (o.filter_residual_only == "auto") {
      double period = 0;
      if (fc.lattice) {
        period = core::LatticePeriod(lattices);
        (*config.mutable_metadata())["lattice_period"] = absl::StrFormat("%.2f", period);
      }
      const int cell = o.image_size / o.latent_size;
      fc.residual_only = (fc.lattice && period > 0 && period < cell) || fc.pixel_norm;
      (*config.mutable_metadata())["residual_only"] = fc.residual_only ? "on" : "off";
      Log(o, absl::StrFormat("residual channels only: %s (lattice channels %s, period %.1f px, "
                             "latent cell %d px; pixel-standardised channels %s)",
                             fc.residual_only ? "on" : "off", fc.lattice ? "on" : "off", period,
                             cell, fc.pixel_norm ? "on" : "off"));
    } else {
      fc.residual_only = o.filter_residual_only == "true";
    }
    fc.laplacian = o.filter_laplacian == "auto" ? !fc.residual_only : o.filter_laplacian == "true";
    fc.periodic = o.filter_periodic == "auto" ? !fc.residual_only : o.filter_periodic == "true";
    core::NamedTensors pixel_stats;
    if (fc.pixel_norm) {  // FitPixelStats refuses it without the rotational channels
      INVAD_ASSIGN_OR_RETURN(pixel_stats, core::FitPixelStats(fc, train_images));
      files.push_back({kPixelStatsFile, bundle::SerializeSafetensors(pixel_stats)});
      config.mutable_encoder()->mutable_filter_bank()->set_weights_file(kPixelStatsFile);
    }
    INVAD_ASSIGN_OR_RETURN(encoder, core::CreateFilterBankEncoder(fc, enc_rt, pixel_stats));
    config.mutable_encoder()->mutable_filter_bank()->set_pixel_norm(fc.pixel_norm);
    for (float s : o.filter_scales) config.mutable_encoder()->mutable_filter_bank()->add_scales(s);
    config.mutable_encoder()->mutable_filter_bank()->set_laplacian(fc.laplacian);
    config.mutable_encoder()->mutable_filter_bank()->set_periodic(fc.periodic);
    config.mutable_encoder()->mutable_filter_bank()->set_rotational(fc.rotational);
    config.mutable_encoder()->mutable_filter_bank()->set_lattice(fc.lattice);
    config.mutable_encoder()->mutable_filter_bank()->set_residual_only(fc.residual_only);
  } else if (o.encoder == "torchscript") {
    INVAD_ASSIGN_OR_RETURN(std::string bytes, bundle::ReadFile(o.encoder_file));
    files.push_back({"encoder.pt", std::move(bytes)});
    config.mutable_encoder()->mutable_torchscript()->set_file("encoder.pt");
    const core::EncoderIo io{spec.channels(),
                             o.image_size,
                             o.image_size,
                             {o.latent_channels, o.latent_size, o.latent_size}};
    INVAD_ASSIGN_OR_RETURN(encoder, core::LoadTorchScriptEncoder(o.encoder_file, io, enc_rt));
  } else {
    core::ConvEncoderConfig cc;
    cc.input_channels = spec.channels();
    cc.input_size = o.image_size;
    cc.stage_channels = o.conv_channels;
    cc.output_stages = o.conv_outputs;
    cc.latent_size = o.latent_size;
    INVAD_RETURN_IF_ERROR(cc.Validate());
    core::NamedTensors weights = core::InitConvEncoderWeights(cc, o.seed);
    if (o.encoder == "conv_ae") {
      const fs::path saved = ckdir / "encoder.safetensors";
      if (resuming && fs::exists(saved)) {
        INVAD_ASSIGN_OR_RETURN(weights, bundle::ReadSafetensors(saved.string()));
        Log(o, "autoencoder: trained weights from the checkpoint");
      } else {
        core::AutoencoderTrainOptions ao;
        ao.seed = o.seed;
        ao.batch_size = std::min(8, o.batch_size);
        if (run.encoder_steps == 0) {
          if (o.encoder_steps > 0) {
            run.encoder_steps = o.encoder_steps;
          } else if (o.time_budget > 0) {
            ao.steps = 8;  // median step time of steps 3..8
            std::vector<double> stamps;
            const auto tt = Clock::now();
            INVAD_RETURN_IF_ERROR(core::TrainConvAutoencoder(cc, weights, train_images, ao,
                                                             [&](const core::TrainProgress&) {
                                                               stamps.push_back(Since(tt));
                                                             })
                                      .status());
            std::vector<double> d;
            for (size_t i = 2; i < stamps.size(); ++i) d.push_back(stamps[i] - stamps[i - 1]);
            std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
            const double per_step = d[d.size() / 2];
            run.encoder_steps = std::clamp(
                static_cast<int>(o.time_budget / 4 / std::max(per_step, 1e-6)), 10, 20000);
          } else {
            run.encoder_steps = 300;
          }
          INVAD_RETURN_IF_ERROR(save_run());
        }
        ao.steps = run.encoder_steps;
        ProgressBar bar("autoencoder", ao.steps, "step");
        INVAD_ASSIGN_OR_RETURN(
            core::AutoencoderTrainResult ae,
            core::TrainConvAutoencoder(cc, weights, train_images, ao,
                                       [&](const core::TrainProgress& p) {
                                         if (o.progress)
                                           bar.Update(p.step, absl::StrFormat("loss %.4f", p.loss));
                                       }));
        if (o.progress) bar.Finish(absl::StrFormat("loss %.4f", ae.losses.back()));
        weights = std::move(ae.encoder_weights);
        INVAD_RETURN_IF_ERROR(
            bundle::WriteFile(saved.string(), bundle::SerializeSafetensors(weights)));
        (*config.mutable_metadata())["encoder_loss_first"] = absl::StrCat(ae.losses.front());
        (*config.mutable_metadata())["encoder_loss_last"] = absl::StrCat(ae.losses.back());
      }
      report.encoder_steps = run.encoder_steps;
    }
    INVAD_ASSIGN_OR_RETURN(encoder, core::CreateNativeConvEncoder(cc, weights, enc_rt));
    files.push_back({"encoder.safetensors", bundle::SerializeSafetensors(weights)});
    auto* spec_conv = config.mutable_encoder()->mutable_conv();
    spec_conv->set_weights_file("encoder.safetensors");
    for (int c : cc.stage_channels) spec_conv->add_stage_channels(c);
    for (int s : cc.output_stages) spec_conv->add_output_stages(s);
    spec_conv->set_objective(o.encoder == "conv_ae" ? "autoencoder" : "random");
  }
  const core::LatentShape latent = encoder->latent_shape();
  config.mutable_latent()->set_channels(static_cast<int>(latent.channels));
  config.mutable_latent()->set_height(static_cast<int>(latent.height));
  config.mutable_latent()->set_width(static_cast<int>(latent.width));

  // z0 of the training images (frozen encoder), standardised.
  Tensor z0({train_images.batch(), latent.channels, latent.height, latent.width});
  {
    ProgressBar bar("encode", static_cast<int>(train_images.batch()));
    for (int64_t i = 0; i < train_images.batch(); i += 16) {
      const int64_t n = std::min<int64_t>(16, train_images.batch() - i);
      Tensor z;
      INVAD_RETURN_IF_ERROR(encoder->Encode(train_images.Slice(i, n), &z));
      std::copy(z.data(), z.data() + z.numel(), z0.sample(i));
      if (o.progress) bar.Update(static_cast<int>(i + n));
    }
  }
  if (o.normalize_latent) {
    const core::LatentNorm norm = core::FitLatentNorm(z0, o.normalize_latent_per_location);
    core::ApplyLatentNorm(norm, &z0);
    for (float m : norm.mean) config.mutable_latent()->add_mean(m);
    for (float s : norm.std) config.mutable_latent()->add_std(s);
  }

  // 3. Denoiser.
  core::DitConfig dit;
  dit.latent = latent;
  dit.patch_size = o.dit_patch;
  dit.hidden_size = o.dit_hidden;
  dit.depth = o.dit_depth;
  dit.num_heads = o.dit_heads;
  INVAD_RETURN_IF_ERROR(dit.Validate());
  INVAD_ASSIGN_OR_RETURN(core::NoiseSchedule schedule,
                         core::NoiseSchedule::Linear(1000, 1e-4, 0.02));
  const core::NamedTensors init = core::InitDitWeights(dit, o.seed);
  core::DenoiserTrainOptions to;
  to.batch_size = o.batch_size;
  to.peak_lr = o.lr;
  to.seed = o.seed;
  if (run.denoiser_steps == 0) {
    if (o.steps > 0) {
      run.denoiser_steps = o.steps;
    } else if (o.epochs > 0) {
      run.denoiser_steps =
          std::max(1, static_cast<int>(std::ceil(o.epochs * train_images.batch() / o.batch_size)));
    } else if (o.time_budget > 0) {
      // A short timing phase, converted once into a step count (recorded in the bundle).
      // Median step time of steps 5..30: robust to a transient stall (another process). With
      // steps 3..10 the medians of six runs of one configuration ranged 142–202 ms while the
      // runs averaged 177–189 ms, and one run overran a 520-s budget by 31 %.
      to.steps = 30;
      std::vector<double> stamps;
      const auto tt = Clock::now();
      INVAD_RETURN_IF_ERROR(
          core::TrainDenoiser(dit, init, z0, schedule, to, [&](const core::TrainProgress&) {
            stamps.push_back(Since(tt));
          }).status());
      std::vector<double> durations;
      for (size_t i = 4; i < stamps.size(); ++i) durations.push_back(stamps[i] - stamps[i - 1]);
      std::nth_element(durations.begin(), durations.begin() + durations.size() / 2,
                       durations.end());
      const double per_step = durations[durations.size() / 2];
      // What is left of the budget; after an autoencoder, never less than the denoiser's three
      // quarters, so an encoder that overran its quarter cannot starve it.
      double left = o.time_budget - Since(t_train);
      if (o.encoder == "conv_ae") left = std::max(left, 0.75 * o.time_budget);
      run.timed_step_ms = per_step * 1e3;
      run.denoiser_steps =
          std::clamp(static_cast<int>(left / std::max(per_step, 1e-6)), 20, 10'000'000);
      Log(o, absl::StrFormat("time budget %.0f s: %.1f ms per step, %.0f s left -> %d steps",
                             o.time_budget, per_step * 1e3, left, run.denoiser_steps));
    } else {
      run.denoiser_steps = 2000;
    }
    INVAD_RETURN_IF_ERROR(save_run());
  }
  to.steps = run.denoiser_steps;
  report.denoiser_steps = to.steps;
  std::unique_ptr<core::DenoiserTrainState> state;
  const fs::path state_path = ckdir / "denoiser.safetensors";
  if (resuming && fs::exists(state_path)) {
    INVAD_ASSIGN_OR_RETURN(core::DenoiserTrainState st, ReadState(state_path.string()));
    state = std::make_unique<core::DenoiserTrainState>(std::move(st));
    Log(o, absl::StrCat("denoiser: continuing at step ", state->step, " of ", to.steps));
  }
  core::DenoiserCheckpointing ck;
  ck.every_steps = o.checkpoint_every;
  ck.stop_after = o.stop_after_steps;
  ck.save = [&](const core::DenoiserTrainState& st) {
    return bundle::WriteFile(state_path.string(), SerializeState(st));
  };
  const int first_step = state ? state->step : 0;
  ProgressBar bar("denoiser", to.steps - first_step, "step");
  auto trained = core::TrainDenoiser(
      dit, init, z0, schedule, to,
      [&](const core::TrainProgress& p) {
        if (o.progress && (p.step % 5 == 0 || p.step == p.steps))
          bar.Update(p.step - first_step,
                     absl::StrFormat("step %d epoch %.1f loss %.4f %.0f samples/s", p.step,
                                     static_cast<double>(p.step) * o.batch_size / z0.batch(),
                                     p.loss, p.samples_per_second));
      },
      state.get(), ck);
  if (!trained.ok()) return trained.status();
  const std::vector<double>& losses = trained->losses;
  const size_t tenth = std::max<size_t>(1, losses.size() / 10);
  report.first_loss = std::accumulate(losses.begin(), losses.begin() + tenth, 0.0) / tenth;
  report.last_loss = std::accumulate(losses.end() - tenth, losses.end(), 0.0) / tenth;
  if (o.progress)
    bar.Finish(absl::StrFormat("loss %.4f -> %.4f", report.first_loss, report.last_loss));
  report.train_seconds = Since(t_train);
  files.push_back({"denoiser.safetensors", bundle::SerializeSafetensors(trained->ema_weights)});
  auto* d = config.mutable_denoiser()->mutable_dit();
  d->set_weights_file("denoiser.safetensors");
  d->set_patch_size(o.dit_patch);
  d->set_hidden_size(o.dit_hidden);
  d->set_depth(o.dit_depth);
  d->set_num_heads(o.dit_heads);
  d->set_mlp_ratio_x100(dit.mlp_ratio_x100);
  d->set_frequency_embedding_size(dit.frequency_embedding_size);
  if (o.precision != "auto") {  // auto: unspecified, so the serving device picks (ServedPrecision)
    INVAD_ASSIGN_OR_RETURN(core::Precision precision, core::ParsePrecision(o.precision));
    config.set_precision(precision == core::Precision::kBf16   ? v1::BF16
                         : precision == core::Precision::kFp16 ? v1::FP16
                                                               : v1::FP32);
  }
  auto* diff = config.mutable_diffusion();
  diff->set_num_timesteps(1000);
  diff->set_beta_start(1e-4);
  diff->set_beta_end(0.02);
  diff->set_schedule(v1::SCHEDULE_CODE);
  for (int k : o.allowed_steps) diff->add_allowed_steps(k);
  diff->set_default_steps(o.default_steps);
  for (const std::string& c : categories) config.add_categories(c);
  auto& md = *config.mutable_metadata();
  md["trained_at"] = Today();
  md["data"] = absl::StrJoin(o.data, " ");
  md["encoder"] = o.encoder;
  md["seed"] = absl::StrCat(o.seed);
  md["train_images"] = absl::StrCat(report.train_images);
  md["holdout_images"] = absl::StrCat(report.val_images);
  md["encoder_steps"] = absl::StrCat(run.encoder_steps);
  md["denoiser_steps"] = absl::StrCat(to.steps);
  md["batch_size"] = absl::StrCat(o.batch_size);
  md["peak_lr"] = absl::StrCat(o.lr);
  if (o.time_budget > 0) {
    md["time_budget_s"] = absl::StrCat(o.time_budget);
    md["timed_step_ms"] = absl::StrFormat("%.3f", run.timed_step_ms);
  }
  md["loss_first_tenth"] = absl::StrFormat("%.5f", report.first_loss);
  md["loss_last_tenth"] = absl::StrFormat("%.5f", report.last_loss);
  md["train_seconds"] = absl::StrFormat("%.1f", report.train_seconds);
  md["threads"] = absl::StrCat(core::TorchIntraOpThreads());

  // 4. Calibration on the held-out images, through the pipeline as a bundle describes it; the
  //    position statistics from the training images.
  const std::string staging = (fs::path(o.out) / absl::StrCat(".staging-", getpid())).string();
  auto pipeline = StagePipeline(staging, config, files, o.device);
  absl::Status cal = pipeline.ok() ? CalibrateInto(**pipeline, val_images, val_kept, train_images,
                                                   train_kept, o, &config)
                                   : pipeline.status();
  std::error_code ec;
  fs::remove_all(staging, ec);
  INVAD_RETURN_IF_ERROR(cal);
  INVAD_ASSIGN_OR_RETURN(report.version_dir, bundle::WriteNextVersion(o.out, config, files));
  fs::remove_all(ckdir, ec);
  report.total_seconds = Since(t_start);
  return report;
}

}  // namespace invad::tools

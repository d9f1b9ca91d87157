#include "tools/eval/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include "bundle/bundle.h"
#include "core/base/status_macros.h"
#include "core/model/reconstruction.h"
#include "core/runtime/runtime.h"
#include "core/scoring/calibration.h"
#include "core/scoring/scoring.h"
#include "preprocess/preprocess.h"
#include "tools/common/csv.h"
#include "tools/common/dataset.h"
#include "tools/common/progress.h"
#include "tools/eval/metrics.h"

namespace invad::tools {
namespace {

namespace fs = std::filesystem;
using core::Tensor;
using Clock = std::chrono::steady_clock;

const char* const kBuckets[] = {"all", "subtle", "obvious"};
const char* const kMetricOrder[] = {"I-AUROC", "I-AP",      "I-F1max", "P-AUROC", "P-AP",
                                    "AUPRO",   "precision", "recall",  "FPR"};

struct Scored {
  TestImage item;
  double score = 0;
  std::vector<float> map;     // H×W
  std::vector<uint8_t> mask;  // H×W, 0/1
  double image_threshold = NAN;
  double pixel_threshold = NAN;
  // Inversion mode: the raw components behind `score` (NaN in the other modes).
  double sq_norm = NAN;
  double diff = NAN;
  double positional_max = NAN;  // NaN also when the calibration has no position statistics
};

bool InBucket(const Scored& s, const std::string& bucket) {
  if (!s.item.anomalous || bucket == "all") return true;
  return s.item.difficulty == bucket;
}

Metrics ComputeMetrics(const std::vector<const Scored*>& set, int h, int w) {
  Metrics m;
  std::vector<double> scores;
  std::vector<int> labels;
  for (const Scored* s : set) {
    scores.push_back(s->score);
    labels.push_back(s->item.anomalous ? 1 : 0);
  }
  const RankingMetrics image = Ranking(scores, labels);
  m["I-AUROC"] = image.auroc;
  m["I-AP"] = image.ap;
  m["I-F1max"] = image.f1.f1;
  // Pixels.
  const size_t per = static_cast<size_t>(h) * w;
  std::vector<double> pix;
  std::vector<int> plab;
  std::vector<float> fpix;
  std::vector<int32_t> regions;
  pix.reserve(set.size() * per);
  plab.reserve(set.size() * per);
  fpix.reserve(set.size() * per);
  regions.reserve(set.size() * per);
  int32_t next_region = 1;
  for (const Scored* s : set) {
    pix.insert(pix.end(), s->map.begin(), s->map.end());
    fpix.insert(fpix.end(), s->map.begin(), s->map.end());
    cv::Mat mask(h, w, CV_8UC1, const_cast<uint8_t*>(s->mask.data()));
    cv::Mat labels_img;
    const int n = cv::connectedComponents(mask, labels_img, 8, CV_32S);
    for (int y = 0; y < h; ++y) {
      const int32_t* row = labels_img.ptr<int32_t>(y);
      for (int x = 0; x < w; ++x) {
        plab.push_back(row[x] > 0 ? 1 : 0);
        regions.push_back(row[x] > 0 ? next_region + row[x] - 1 : 0);
      }
    }
    next_region += std::max(0, n - 1);
  }
  // Two sorts of every pixel, one per core: AUROC and AP share one, AUPRO has its own.
  double aupro = NAN;
  std::thread aupro_thread([&] { aupro = Aupro(fpix, regions, 0.3); });
  const RankingMetrics pixel = Ranking(pix, plab);
  aupro_thread.join();
  m["P-AUROC"] = pixel.auroc;
  m["P-AP"] = pixel.ap;
  m["AUPRO"] = aupro;
  // At the calibrated image threshold.
  if (!set.empty() && !std::isnan(set.front()->image_threshold)) {
    double tp = 0, fp = 0, fn = 0, tn = 0;
    for (const Scored* s : set) {
      const bool flagged = s->score > s->image_threshold;
      if (s->item.anomalous) {
        (flagged ? tp : fn) += 1;
      } else {
        (flagged ? fp : tn) += 1;
      }
    }
    m["precision"] = tp + fp > 0 ? tp / (tp + fp) : NAN;
    m["recall"] = tp + fn > 0 ? tp / (tp + fn) : NAN;
    m["FPR"] = fp + tn > 0 ? fp / (fp + tn) : NAN;
  }
  return m;
}

std::string Num(double v) { return std::isnan(v) ? "null" : absl::StrFormat("%.6f", v); }

std::string MetricsJson(const Metrics& m) {
  std::vector<std::string> parts;
  for (const char* k : kMetricOrder) {
    auto it = m.find(k);
    if (it != m.end()) parts.push_back(absl::StrFormat("\"%s\": %s", k, Num(it->second)));
  }
  return "{" + absl::StrJoin(parts, ", ") + "}";
}

cv::Mat HeatMap(const std::vector<float>& map, int h, int w, double lo, double hi) {
  cv::Mat f(h, w, CV_32F, const_cast<float*>(map.data()));
  cv::Mat u8;
  f.convertTo(u8, CV_8U, 255.0 / std::max(hi - lo, 1e-9), -lo * 255.0 / std::max(hi - lo, 1e-9));
  cv::Mat color;
  cv::applyColorMap(u8, color, cv::COLORMAP_JET);
  return color;
}

void WriteOverlay(const Scored& s, int h, int w, double lo, double hi, const std::string& path) {
  cv::Mat img = cv::imread(s.item.path, cv::IMREAD_COLOR);
  if (img.empty()) return;
  cv::resize(img, img, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  cv::Mat heat = HeatMap(s.map, h, w, lo, hi);
  cv::Mat contour = img.clone();
  cv::Mat mask(h, w, CV_8UC1, const_cast<uint8_t*>(s.mask.data()));
  std::vector<std::vector<cv::Point>> cs;
  cv::findContours(mask.clone(), cs, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
  cv::drawContours(contour, cs, -1, cv::Scalar(0, 255, 0), 1);
  if (!std::isnan(s.pixel_threshold)) {
    cv::Mat f(h, w, CV_32F, const_cast<float*>(s.map.data()));
    cv::Mat pred = f > s.pixel_threshold;
    std::vector<std::vector<cv::Point>> ps;
    cv::findContours(pred, ps, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
    cv::drawContours(contour, ps, -1, cv::Scalar(0, 0, 255), 1);
  }
  cv::Mat row;
  cv::hconcat(std::vector<cv::Mat>{img, heat, contour}, row);
  cv::imwrite(path, row);
}

std::string Safe(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  return s;
}

// The simple baseline docs/accuracy.md compares with: per pixel and channel, the mean and standard
// deviation of the preprocessed normal training images; the map is the largest |x − μ|/σ over
// channels, Gaussian-blurred (σ = 4 px at 256, scaled with the input); the image score its maximum.
// σ gets a floor of a tenth of its mean over the image, so constant pixels do not explode.
struct PixelGaussian {
  int c = 0, h = 0, w = 0;
  std::vector<float> mean, inv_std;

  double Score(const float* x, std::vector<float>* map) const {
    const size_t hw = static_cast<size_t>(h) * w;
    map->assign(hw, 0.0f);
    for (int ch = 0; ch < c; ++ch) {
      for (size_t p = 0; p < hw; ++p) {
        const size_t i = ch * hw + p;
        (*map)[p] = std::max((*map)[p], std::abs(x[i] - mean[i]) * inv_std[i]);
      }
    }
    cv::Mat m(h, w, CV_32F, map->data());
    const double sigma = 4.0 * w / 256.0;
    cv::GaussianBlur(m, m, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT);
    return *std::max_element(map->begin(), map->end());
  }
};

absl::StatusOr<std::map<std::string, PixelGaussian>> FitPixelGaussians(
    const std::string& data, const preprocess::InputSpec& spec) {
  INVAD_ASSIGN_OR_RETURN(std::vector<TrainImage> train, FindTrainImages(data));
  std::map<std::string, std::vector<double>> sum, sq;
  std::map<std::string, int> count;
  const size_t n = static_cast<size_t>(spec.channels()) * spec.height * spec.width;
  for (const TrainImage& t : train) {
    auto x = preprocess::PreprocessFile(t.path, spec);
    if (!x.ok()) continue;  // the trainer skips unreadable files the same way
    std::vector<double>& s = sum[t.category];
    std::vector<double>& q = sq[t.category];
    s.resize(n);
    q.resize(n);
    for (size_t i = 0; i < n; ++i) {
      s[i] += x->data()[i];
      q[i] += static_cast<double>(x->data()[i]) * x->data()[i];
    }
    ++count[t.category];
  }
  std::map<std::string, PixelGaussian> out;
  for (const auto& [cat, s] : sum) {
    PixelGaussian g;
    g.c = spec.channels();
    g.h = spec.height;
    g.w = spec.width;
    g.mean.resize(n);
    g.inv_std.resize(n);
    const double cnt = count[cat];
    std::vector<double> sd(n);
    double mean_sd = 0;
    for (size_t i = 0; i < n; ++i) {
      const double m = s[i] / cnt;
      g.mean[i] = static_cast<float>(m);
      sd[i] = std::sqrt(std::max(0.0, sq.at(cat)[i] / cnt - m * m));
      mean_sd += sd[i] / n;
    }
    for (size_t i = 0; i < n; ++i)
      g.inv_std[i] = static_cast<float>(1.0 / (sd[i] + 0.1 * mean_sd + 1e-6));
    out[cat] = std::move(g);
  }
  return out;
}

}  // namespace

std::string FormatMarkdown(const EvalReport& r, const EvalOptions& o) {
  std::string md = absl::StrFormat(
      "# invad-eval report\n\nmodel `%s`, data `%s`, mode %s, NFE %d per image; %d images, "
      "%.1f ms/image (model), %.1f images/s end to end.\n\n",
      o.model, o.data, o.mode, r.nfe, r.images, r.ms_per_image, r.images_per_second);
  const char* cols[] = {"I-AUROC", "I-AP", "I-F1max", "P-AUROC", "P-AP", "AUPRO"};
  auto row = [&](const std::string& name, const std::string& bucket, const Metrics& m) {
    std::string line = absl::StrFormat("| %s | %s |", name, bucket);
    for (const char* c : cols) {
      auto it = m.find(c);
      absl::StrAppend(&line, " ",
                      it == m.end() || std::isnan(it->second) ? std::string("–")
                                                              : absl::StrFormat("%.3f", it->second),
                      " |");
    }
    for (const char* c : {"precision", "recall", "FPR"}) {
      auto it = m.find(c);
      absl::StrAppend(&line, " ",
                      it == m.end() || std::isnan(it->second) ? std::string("–")
                                                              : absl::StrFormat("%.2f", it->second),
                      " |");
    }
    return line + "\n";
  };
  md +=
      "| category | bucket | I-AUROC | I-AP | I-F1max | P-AUROC | P-AP | AUPRO | precision | "
      "recall | FPR |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& [cat, buckets] : r.categories) {
    for (const char* b : kBuckets) {
      auto it = buckets.find(b);
      if (it != buckets.end()) md += row(cat, b, it->second);
    }
  }
  for (const char* b : kBuckets) {
    auto it = r.mean.find(b);
    if (it != r.mean.end()) md += row("**mean**", b, it->second);
  }
  return md;
}

absl::StatusOr<EvalReport> RunEvaluation(const EvalOptions& o) {
  if (o.model.empty() || o.data.empty() || o.out.empty())
    return absl::InvalidArgumentError("--model, --data and --out are required");
  if (o.mode != "inversion" && o.mode != "reconstruction" && o.mode != "pixel_gaussian")
    return absl::InvalidArgumentError("--mode must be inversion, reconstruction or pixel_gaussian");
  if (o.batch_size < 1) return absl::InvalidArgumentError("--batch_size must be >= 1");
  INVAD_RETURN_IF_ERROR(core::ConfigureProcess(o.threads));
  const auto t_start = Clock::now();
  INVAD_ASSIGN_OR_RETURN(bundle::LoadedModel model, bundle::LoadModel(o.model, o.device));
  const v1::ModelConfig& config = model.bundle.config;
  INVAD_ASSIGN_OR_RETURN(std::vector<TestImage> items, FindTestImages(o.data));
  const bool inversion = o.mode == "inversion";
  const bool baseline = o.mode == "pixel_gaussian";
  const int k = inversion ? (o.steps > 0 ? o.steps : config.diffusion().default_steps()) : 0;
  core::ReconstructionOptions ro;
  std::map<std::string, PixelGaussian> gaussians;
  if (baseline) {
    INVAD_ASSIGN_OR_RETURN(gaussians, FitPixelGaussians(o.data, model.input));
  } else if (!inversion) {
    ro.num_points = o.steps > 0 ? o.steps : 10;
    ro.noise_index = o.noise_index > 0 ? o.noise_index : std::min(7, ro.num_points - 1);
    INVAD_RETURN_IF_ERROR(ro.Validate());
  } else {
    INVAD_RETURN_IF_ERROR(model.pipeline->Plan(k).status());
  }
  INVAD_ASSIGN_OR_RETURN(core::NoiseSchedule schedule, bundle::ToNoiseSchedule(config.diffusion()));
  const int h = model.input.height, w = model.input.width;
  const core::LatentShape latent = model.pipeline->latent_shape();

  std::vector<Scored> scored;
  scored.reserve(items.size());
  double model_seconds = 0;
  ProgressBar bar("eval", static_cast<int>(items.size()));
  for (size_t start = 0; start < items.size(); start += o.batch_size) {
    const size_t n = std::min<size_t>(o.batch_size, items.size() - start);
    Tensor batch({static_cast<int64_t>(n), model.input.channels(), h, w});
    std::vector<preprocess::Pose> poses(n);
    for (size_t i = 0; i < n; ++i) {
      const TestImage& it = items[start + i];
      INVAD_ASSIGN_OR_RETURN(Tensor x,
                             preprocess::PreprocessFile(it.path, model.input, {}, &poses[i]));
      std::copy(x.data(), x.data() + x.numel(), batch.sample(static_cast<int64_t>(i)));
    }
    const auto t0 = Clock::now();
    Tensor z, maps;
    std::vector<double> scores(n);
    std::vector<core::LatentScore> latent_scores;
    std::vector<std::vector<float>> up(n, std::vector<float>(static_cast<size_t>(h) * w));
    if (baseline) {
      for (size_t i = 0; i < n; ++i) {
        auto g = gaussians.find(items[start + i].category);
        if (g == gaussians.end()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "pixel_gaussian: no training images for category ", items[start + i].category));
        }
        scores[i] = g->second.Score(batch.sample(static_cast<int64_t>(i)), &up[i]);
      }
    } else {
      INVAD_RETURN_IF_ERROR(model.pipeline->Encode(batch, &z));
      if (inversion) {
        INVAD_RETURN_IF_ERROR(model.pipeline->Invert(k, z));
        latent_scores = core::ScoreLatents(z, &maps);
      } else {
        INVAD_ASSIGN_OR_RETURN(
            std::vector<core::ReconstructionScore> rs,
            core::Reconstruct(model.pipeline->denoiser(), schedule, ro, z, &maps));
        for (size_t i = 0; i < n; ++i) scores[i] = rs[i].mse;
      }
      for (size_t i = 0; i < n; ++i) {
        core::UpsampleBilinear(maps.sample(static_cast<int64_t>(i)), latent.height, latent.width,
                               up[i].data(), h, w);
      }
    }
    // Pose-normalised inputs: maps go back into the image's frame, where the masks are.
    std::vector<float> canonical;
    for (size_t i = 0; i < n; ++i) {
      if (!poses[i].applied) continue;
      canonical = up[i];
      INVAD_RETURN_IF_ERROR(
          preprocess::MapToImageFrame(poses[i], canonical.data(), w, h, up[i].data()));
    }
    model_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    for (size_t i = 0; i < n; ++i) {
      Scored s;
      s.item = items[start + i];
      s.map = std::move(up[i]);
      if (baseline) {
        s.score = scores[i];
      } else if (inversion) {
        auto cal = bundle::FindCalibration(config, k, s.item.category);
        if (!cal.ok()) cal = bundle::FindCalibration(config, k, "");
        if (!cal.ok()) return cal.status();
        const float* latent_map = maps.sample(static_cast<int64_t>(i));
        s.score = core::CalibratedScore(*cal, latent_scores[i], latent_map);
        s.sq_norm = latent_scores[i].sq_norm;
        s.diff = latent_scores[i].diff;
        if (!cal->position.empty())
          s.positional_max = core::PositionalMax(cal->position, latent_map);
        s.image_threshold = cal->image_threshold;
        s.pixel_threshold = cal->pixel_threshold;
      } else {
        s.score = scores[i];
      }
      s.mask.assign(static_cast<size_t>(h) * w, 0);
      if (s.item.anomalous) {
        cv::Mat m = cv::imread(s.item.mask_path, cv::IMREAD_GRAYSCALE);
        if (m.empty())
          return absl::FailedPreconditionError(absl::StrCat("cannot read mask ", s.item.mask_path));
        cv::resize(m, m, cv::Size(w, h), 0, 0, cv::INTER_NEAREST);
        for (int y = 0; y < h; ++y) {
          for (int x = 0; x < w; ++x)
            s.mask[static_cast<size_t>(y) * w + x] = m.at<uint8_t>(y, x) > 0;
        }
      }
      scored.push_back(std::move(s));
    }
    if (o.progress) bar.Update(static_cast<int>(start + n));
  }
  const double total_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();

  EvalReport r;
  r.images = static_cast<int>(scored.size());
  r.ms_per_image = 1e3 * model_seconds / std::max(1, r.images);
  r.images_per_second = r.images / std::max(total_seconds, 1e-9);
  r.nfe = baseline ? 0 : inversion ? k : ro.nfe();
  std::set<std::string> cats;
  for (const Scored& s : scored) cats.insert(s.item.category);
  for (const std::string& cat : cats) {
    for (const char* b : kBuckets) {
      std::vector<const Scored*> set;
      int anomalous = 0;
      for (const Scored& s : scored) {
        if (s.item.category == cat && InBucket(s, b)) {
          set.push_back(&s);
          anomalous += s.item.anomalous;
        }
      }
      if (anomalous == 0 && std::string(b) != "all") continue;
      r.categories[cat][b] = ComputeMetrics(set, h, w);
    }
  }
  for (const char* b : kBuckets) {
    Metrics sum;
    std::map<std::string, int> count;
    for (const auto& [cat, buckets] : r.categories) {
      auto it = buckets.find(b);
      if (it == buckets.end()) continue;
      for (const auto& [name, v] : it->second) {
        if (std::isnan(v)) continue;
        sum[name] += v;
        ++count[name];
      }
    }
    for (auto& [name, v] : sum) v /= count[name];
    if (!sum.empty()) r.mean[b] = sum;
  }

  // Report files.
  std::error_code ec;
  fs::create_directories(fs::path(o.out) / "overlays", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", o.out, ": ", ec.message()));
  // The calibrated image score's rule (inversion; invad-train writes one rule per bundle).
  std::string score_rule;
  for (const v1::CalibrationEntry& e : config.calibration()) {
    if (inversion && e.steps() == k)
      score_rule = core::ScoreRuleName(bundle::ToCalibration(e).rule);
  }
  std::string json = absl::StrFormat(
      "{\n  \"model\": \"%s\",\n  \"version\": %d,\n  \"data\": \"%s\",\n  \"mode\": \"%s\",\n"
      "  \"score_rule\": \"%s\",\n  \"steps\": %d,\n  \"noise_index\": %d,\n  \"nfe\": %d,\n  "
      "\"images\": %d,\n"
      "  \"ms_per_image\": %.3f,\n  \"images_per_second\": %.3f,\n  \"threads\": %d,\n",
      model.bundle.dir, model.bundle.version, o.data, o.mode, score_rule,
      inversion ? k : ro.num_points, inversion ? 0 : ro.noise_index, r.nfe, r.images,
      r.ms_per_image, r.images_per_second, core::TorchIntraOpThreads());
  json += "  \"categories\": {\n";
  std::vector<std::string> cat_parts;
  for (const auto& [cat, buckets] : r.categories) {
    std::vector<std::string> bs;
    for (const auto& [b, m] : buckets)
      bs.push_back(absl::StrFormat("\"%s\": %s", b, MetricsJson(m)));
    cat_parts.push_back(absl::StrFormat("    \"%s\": {%s}", cat, absl::StrJoin(bs, ", ")));
  }
  json += absl::StrJoin(cat_parts, ",\n") + "\n  },\n  \"mean\": {";
  std::vector<std::string> mean_parts;
  for (const auto& [b, m] : r.mean)
    mean_parts.push_back(absl::StrFormat("\"%s\": %s", b, MetricsJson(m)));
  json += absl::StrJoin(mean_parts, ", ") + "}\n}\n";
  r.json_path = (fs::path(o.out) / "report.json").string();
  r.markdown_path = (fs::path(o.out) / "report.md").string();
  std::ofstream(r.json_path) << json;
  std::ofstream(r.markdown_path) << FormatMarkdown(r, o);
  r.predictions_path = (fs::path(o.out) / "predictions.csv").string();
  {
    std::ofstream csv(r.predictions_path);
    csv << "path,category,defect,difficulty,label,score,sq_norm,diff,map_max,positional_max\n";
    for (const Scored& s : scored) {
      const float map_max = s.map.empty() ? NAN : *std::max_element(s.map.begin(), s.map.end());
      csv << absl::StrFormat("%s,%s,%s,%s,%d,%.9g,%.9g,%.9g,%.9g,%.9g\n", CsvField(s.item.path),
                             CsvField(s.item.category), CsvField(s.item.defect),
                             CsvField(s.item.difficulty), s.item.anomalous ? 1 : 0, s.score,
                             s.sq_norm, s.diff, map_max, s.positional_max);
    }
    if (!csv) return absl::InternalError(absl::StrCat("cannot write ", r.predictions_path));
  }

  // Overlays: the lowest-scored defective and the highest-scored normal images.
  double lo = INFINITY, hi = -INFINITY;
  for (const Scored& s : scored) {
    const auto [mn, mx] = std::minmax_element(s.map.begin(), s.map.end());
    lo = std::min<double>(lo, *mn);
    hi = std::max<double>(hi, *mx);
  }
  std::vector<const Scored*> bad, good;
  for (const Scored& s : scored) (s.item.anomalous ? bad : good).push_back(&s);
  std::sort(bad.begin(), bad.end(), [](auto* a, auto* b) { return a->score < b->score; });
  std::sort(good.begin(), good.end(), [](auto* a, auto* b) { return a->score > b->score; });
  for (int i = 0; i < o.overlays && i < static_cast<int>(bad.size()); ++i) {
    const Scored& s = *bad[i];
    WriteOverlay(s, h, w, lo, hi,
                 (fs::path(o.out) / "overlays" /
                  absl::StrFormat("fn%02d_%s_%s_%s.png", i, Safe(s.item.category),
                                  Safe(s.item.defect), Safe(fs::path(s.item.path).stem())))
                     .string());
  }
  for (int i = 0; i < o.overlays && i < static_cast<int>(good.size()); ++i) {
    const Scored& s = *good[i];
    WriteOverlay(s, h, w, lo, hi,
                 (fs::path(o.out) / "overlays" /
                  absl::StrFormat("fp%02d_%s_good_%s.png", i, Safe(s.item.category),
                                  Safe(fs::path(s.item.path).stem())))
                     .string());
  }
  if (o.progress) bar.Finish();
  return r;
}

}  // namespace invad::tools

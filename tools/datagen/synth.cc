#include "tools/datagen/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace invad::tools {
namespace {

using Rng = std::mt19937_64;

double Uniform(Rng& r, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(r);
}
int UniformInt(Rng& r, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(r); }

// Stable per-image seed: independent of generation order.
uint64_t Mix(uint64_t seed, const std::string& a, const std::string& b, uint64_t i) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (char c : a + "/" + b) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  return h ^ (i * 0xD6E8FEB86659FD93ull);
}

// Smooth random field in [−1, 1] with features of about `scale` pixels: noise at 1/8 resolution,
// blurred and upsampled (a large-σ blur at full resolution costs ~10× more).
cv::Mat Field(Rng& r, int size, double scale) {
  const int small = std::max(8, size / 8);
  cv::Mat n(small, small, CV_32F);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int i = 0; i < small * small; ++i) n.ptr<float>()[i] = nd(r);
  cv::GaussianBlur(n, n, cv::Size(0, 0), scale * small / size);
  cv::resize(n, n, cv::Size(size, size), 0, 0, cv::INTER_CUBIC);
  double mn, mx;
  cv::minMaxLoc(n, &mn, &mx);
  n = (n - (mn + mx) / 2) / std::max((mx - mn) / 2, 1e-6);
  return n;
}

cv::Mat ToU8(const cv::Mat& f) {
  cv::Mat out;
  f.convertTo(out, CV_8U);
  return out;
}

cv::Mat Grid(Rng& r, int s) {
  const double period = Uniform(r, 11, 14), phx = Uniform(r, 0, 6.3), phy = Uniform(r, 0, 6.3);
  const double tilt = Uniform(r, -0.02, 0.02);
  cv::Mat f(s, s, CV_32F);
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) {
      const double u = x + tilt * y, v = y - tilt * x;
      const double wx = std::sin(2 * M_PI * u / period + phx),
                   wy = std::sin(2 * M_PI * v / period + phy);
      f.at<float>(y, x) = static_cast<float>(118 + 45 * std::max(wx, wy) + 10 * wx * wy);
    }
  }
  cv::Mat n(s, s, CV_32F);
  cv::theRNG().state = r();
  cv::randn(n, 0, 6);
  return ToU8(f + n);
}

cv::Mat Wood(Rng& r, int s) {
  const cv::Mat warp = Field(r, s, 18);
  const double ring = Uniform(r, 5, 8), off = Uniform(r, 0, 100);
  const cv::Vec3f dark(Uniform(r, 30, 45), Uniform(r, 60, 80), Uniform(r, 100, 125));  // BGR
  const cv::Vec3f light(Uniform(r, 80, 100), Uniform(r, 135, 155), Uniform(r, 185, 210));
  cv::Mat out(s, s, CV_8UC3);
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) {
      const double t = 0.5 + 0.5 * std::sin((x + off + 22 * warp.at<float>(y, x)) / ring);
      const cv::Vec3f c = dark * (1 - t) + light * t;
      out.at<cv::Vec3b>(y, x) =
          cv::Vec3b(cv::saturate_cast<uchar>(c[0]), cv::saturate_cast<uchar>(c[1]),
                    cv::saturate_cast<uchar>(c[2]));
    }
  }
  return out;
}

cv::Mat Metal(Rng& r, int s) {
  cv::Mat n(s, s, CV_32F);
  cv::theRNG().state = r();
  cv::randn(n, 0, 40);
  cv::blur(n, n, cv::Size(41, 1));  // brushed along x
  const double gx = Uniform(r, -0.15, 0.15), gy = Uniform(r, -0.15, 0.15),
               base = Uniform(r, 125, 150);
  cv::Mat f(s, s, CV_32F);
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x)
      f.at<float>(y, x) = static_cast<float>(base + gx * (x - s / 2) + gy * (y - s / 2));
  }
  return ToU8(f + n * 1.6);
}

cv::Mat Carpet(Rng& r, int s) {
  cv::Mat n(s, s, CV_32FC3);
  cv::theRNG().state = r();
  cv::randn(n, cv::Scalar::all(0), cv::Scalar::all(38));
  cv::GaussianBlur(n, n, cv::Size(0, 0), 1.3);
  const cv::Scalar base(Uniform(r, 70, 90), Uniform(r, 60, 80), Uniform(r, 120, 145));
  cv::Mat out;
  cv::Mat(n + base).convertTo(out, CV_8UC3);
  return out;
}

cv::Mat Tile(Rng& r, int s) {
  const int t = UniformInt(r, 60, 68), ox = UniformInt(r, 0, t - 1), oy = UniformInt(r, 0, t - 1);
  const cv::Scalar base(Uniform(r, 170, 185), Uniform(r, 175, 190), Uniform(r, 180, 195));
  cv::Mat out(s, s, CV_8UC3, base);
  for (int ty = -1; ty * t < s; ++ty) {
    for (int tx = -1; tx * t < s; ++tx) {
      const double shade = Uniform(r, -8, 8);
      cv::rectangle(out, cv::Rect(tx * t + ox, ty * t + oy, t, t), base + cv::Scalar::all(shade),
                    cv::FILLED);
      cv::rectangle(out, cv::Rect(tx * t + ox, ty * t + oy, t, t), cv::Scalar(95, 100, 105),
                    3);  // grout
    }
  }
  cv::Mat n(s, s, CV_8UC3);
  cv::theRNG().state = r();
  cv::randn(n, cv::Scalar::all(0), cv::Scalar::all(4));
  cv::Mat f;
  out.convertTo(f, CV_16SC3);
  cv::Mat nf;
  n.convertTo(nf, CV_16SC3);
  cv::Mat res;
  cv::Mat(f + nf).convertTo(res, CV_8UC3);
  return res;
}

struct Washer {
  cv::Point2f center;
  float outer = 0, inner = 0, angle = 0;
};

cv::Mat WasherImage(Rng& r, int s, Washer* w) {
  w->center = cv::Point2f(s / 2.f + Uniform(r, -10, 10), s / 2.f + Uniform(r, -10, 10));
  w->outer = static_cast<float>(s * Uniform(r, 0.30, 0.33));
  w->inner = static_cast<float>(s * Uniform(r, 0.13, 0.15));
  w->angle = static_cast<float>(Uniform(r, 0, 2 * M_PI));
  cv::Mat img(s, s, CV_32F, cv::Scalar(35));
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) {
      const float dx = x - w->center.x, dy = y - w->center.y, rad = std::sqrt(dx * dx + dy * dy);
      if (rad <= w->outer && rad >= w->inner) {
        const float a = std::atan2(dy, dx) - w->angle;
        img.at<float>(y, x) =
            150 + 40 * std::cos(a) + 12 * std::cos(3 * (rad - w->inner) / 4);  // lit from one side
      }
    }
  }
  // A notch on the outer rim makes the pose visible.
  const cv::Point notch(static_cast<int>(w->center.x + w->outer * std::cos(w->angle)),
                        static_cast<int>(w->center.y + w->outer * std::sin(w->angle)));
  cv::circle(img, notch, static_cast<int>(s * 0.025), cv::Scalar(35), cv::FILLED);
  cv::GaussianBlur(img, img, cv::Size(3, 3), 0.8);
  cv::Mat n(s, s, CV_32F);
  cv::theRNG().state = r();
  cv::randn(n, 0, 3);
  return ToU8(img + n);
}

cv::Mat Normal(const std::string& cat, Rng& r, int s, Washer* w) {
  if (cat == "grid") return Grid(r, s);
  if (cat == "wood") return Wood(r, s);
  if (cat == "metal") return Metal(r, s);
  if (cat == "carpet") return Carpet(r, s);
  if (cat == "tile") return Tile(r, s);
  return WasherImage(r, s, w);
}

// The defect's region (0/255) for each kind. Subtle regions stay within 0.5 % of the image.
cv::Mat Region(const std::string& kind, bool subtle, Rng& r, int s, const Washer& w, bool object) {
  cv::Mat m(s, s, CV_8U, cv::Scalar(0));
  const double scale = s / 256.0;
  cv::Point c(UniformInt(r, s / 5, 4 * s / 5), UniformInt(r, s / 5, 4 * s / 5));
  if (object) {  // defects sit on the washer's ring
    const double a = Uniform(r, 0, 2 * M_PI),
                 rad = Uniform(r, w.inner + 6 * scale, w.outer - 6 * scale);
    c = cv::Point(static_cast<int>(w.center.x + rad * std::cos(a)),
                  static_cast<int>(w.center.y + rad * std::sin(a)));
  }
  if (kind == "scratch" || kind == "crack") {
    const int segments = subtle ? UniformInt(r, 3, 5) : UniformInt(r, 6, 12);
    const int step = static_cast<int>((subtle ? 5 : 9) * scale);
    const int thick = subtle ? 1 : std::max(1, static_cast<int>((kind == "crack" ? 3 : 2) * scale));
    double dir = Uniform(r, 0, 2 * M_PI);
    cv::Point p = c;
    for (int i = 0; i < segments; ++i) {
      dir += kind == "crack" ? Uniform(r, -0.9, 0.9) : Uniform(r, -0.15, 0.15);
      const cv::Point q(p.x + static_cast<int>(step * std::cos(dir)),
                        p.y + static_cast<int>(step * std::sin(dir)));
      cv::line(m, p, q, cv::Scalar(255), thick, cv::LINE_8);
      p = q;
    }
  } else if (kind == "hole") {
    const int rad = static_cast<int>((subtle ? Uniform(r, 3, 5) : Uniform(r, 7, 14)) * scale);
    cv::circle(m, c, std::max(rad, 2), cv::Scalar(255), cv::FILLED);
  } else if (kind == "stain") {
    const cv::Size axes(static_cast<int>((subtle ? Uniform(r, 4, 7) : Uniform(r, 10, 22)) * scale),
                        static_cast<int>((subtle ? Uniform(r, 3, 5) : Uniform(r, 7, 16)) * scale));
    cv::ellipse(m, c, axes, Uniform(r, 0, 180), 0, 360, cv::Scalar(255), cv::FILLED);
  } else if (kind == "contamination") {
    std::vector<cv::Point> poly;
    const double rad = (subtle ? 5.5 : 14) * scale;
    for (int i = 0; i < 7; ++i) {
      const double a = 2 * M_PI * i / 7, rr = rad * Uniform(r, 0.6, 1.2);
      poly.emplace_back(c.x + static_cast<int>(rr * std::cos(a)),
                        c.y + static_cast<int>(rr * std::sin(a)));
    }
    cv::fillPoly(m, std::vector<std::vector<cv::Point>>{poly}, cv::Scalar(255));
  } else {         // missing
    if (object) {  // a bite out of the ring's rim
      const double a = Uniform(r, 0, 2 * M_PI);
      const cv::Point rim(static_cast<int>(w.center.x + w.outer * std::cos(a)),
                          static_cast<int>(w.center.y + w.outer * std::sin(a)));
      cv::circle(m, rim, static_cast<int>((subtle ? 5 : 14) * scale), cv::Scalar(255), cv::FILLED);
    } else {
      const int hw = static_cast<int>((subtle ? Uniform(r, 5, 7) : Uniform(r, 12, 24)) * scale);
      const int hh = static_cast<int>((subtle ? Uniform(r, 3, 5) : Uniform(r, 8, 16)) * scale);
      cv::rectangle(m, cv::Rect(c.x - hw, c.y - hh, 2 * hw, 2 * hh), cv::Scalar(255), cv::FILLED);
    }
  }
  if (object) {  // defects stay on the part
    cv::Mat ring(s, s, CV_8U, cv::Scalar(0));
    cv::circle(ring, w.center, static_cast<int>(w.outer), cv::Scalar(255), cv::FILLED);
    cv::circle(ring, w.center, static_cast<int>(w.inner), cv::Scalar(0), cv::FILLED);
    m &= ring;
  }
  // Subtle defects never exceed 0.5 % of the image: erode the region until they fit.
  const int limit = static_cast<int>(0.005 * s * s);
  while (subtle && cv::countNonZero(m) > limit) {
    cv::erode(m, m, cv::Mat());
  }
  return m;
}

// Paints the defect inside `m` only, so the mask is exact.
void Paint(const std::string& kind, bool subtle, Rng& r, const cv::Mat& m, cv::Mat& img,
           bool object) {
  const int ch = img.channels();
  const double sign = UniformInt(r, 0, 1) ? 1.0 : -1.0;
  const double delta = subtle ? Uniform(r, 8, 13) : Uniform(r, 45, 90);
  const cv::Vec3d color(Uniform(r, 0.4, 1.6), Uniform(r, 0.4, 1.6), Uniform(r, 0.4, 1.6));
  cv::Mat patch;
  if (kind == "contamination" && !subtle) {  // a foreign texture
    patch = cv::Mat(img.size(), img.type());
    cv::theRNG().state = r();
    cv::randu(patch, cv::Scalar::all(0), cv::Scalar::all(255));
    cv::GaussianBlur(patch, patch, cv::Size(0, 0), 2.0);
  }
  for (int y = 0; y < img.rows; ++y) {
    const uchar* mr = m.ptr<uchar>(y);
    uchar* p = img.ptr<uchar>(y);
    for (int x = 0; x < img.cols; ++x) {
      if (!mr[x]) continue;
      for (int k = 0; k < ch; ++k) {
        double v = p[x * ch + k];
        const bool dark = kind == "hole" || kind == "crack" || kind == "missing";
        if (subtle) {
          v += dark ? -delta : sign * delta;  // every subtle kind: a faint shift, <= 13 grey levels
        } else if (kind == "missing") {
          v = object ? 35 : v - delta;  // the background shows through
        } else if (kind == "contamination") {
          v = patch.ptr<uchar>(y)[x * ch + k];
        } else if (kind == "stain" && ch == 3) {
          v += sign * delta * color[k];
        } else {
          v += dark ? -delta : sign * delta;
        }
        p[x * ch + k] = cv::saturate_cast<uchar>(v);
      }
    }
  }
}

}  // namespace

const std::vector<std::string>& DatagenCategories() {
  static const std::vector<std::string> c = {"grid", "wood", "metal", "carpet", "tile", "washer"};
  return c;
}
const std::vector<std::string>& DatagenDefects() {
  static const std::vector<std::string> d = {"scratch", "hole",          "stain",
                                             "crack",   "contamination", "missing"};
  return d;
}

absl::Status DatagenOptions::Validate() const {
  if (out.empty()) return absl::InvalidArgumentError("--out is required");
  if (size < 64 || size > 2048)
    return absl::InvalidArgumentError(absl::StrCat("--size must be in [64, 2048], got ", size));
  if (threads < 1 || threads > 64)
    return absl::InvalidArgumentError("--threads must be in [1, 64]");
  if (train < 1 || test_good < 1 || test_per_defect < 0) {
    return absl::InvalidArgumentError(
        "--train and --test_good must be >= 1, --test_per_defect >= 0");
  }
  for (const std::string& c : categories) {
    const auto& all = DatagenCategories();
    if (std::find(all.begin(), all.end(), c) == all.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown category '", c, "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SynthImage> Synthesize(const std::string& category, const std::string& defect,
                                      bool subtle, uint64_t seed, int size) {
  const auto& cats = DatagenCategories();
  if (std::find(cats.begin(), cats.end(), category) == cats.end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown category '", category, "'"));
  }
  const auto& defects = DatagenDefects();
  if (defect != "good" && std::find(defects.begin(), defects.end(), defect) == defects.end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown defect '", defect, "'"));
  }
  Rng r(seed);
  Washer w;
  cv::Mat img = Normal(category, r, size, &w);
  SynthImage out;
  out.size = size;
  out.channels = img.channels();
  out.mask.assign(static_cast<size_t>(size) * size, 0);
  if (defect != "good") {
    const bool object = category == "washer";
    const cv::Mat region = Region(defect, subtle, r, size, w, object);
    const cv::Mat before = img.clone();
    Paint(defect, subtle, r, region, img, object);
    cv::Mat diff;
    cv::absdiff(before, img, diff);
    if (diff.channels() == 3) cv::cvtColor(diff, diff, cv::COLOR_BGR2GRAY);
    const int n = cv::countNonZero(region);
    out.area_fraction = static_cast<double>(n) / (size * size);
    out.contrast = n ? cv::mean(diff, region)[0] : 0.0;
    std::memcpy(out.mask.data(), region.data, out.mask.size());
    out.defect = defect;
    out.difficulty = subtle ? "subtle" : "obvious";
  }
  out.pixels.assign(img.data, img.data + img.total() * img.elemSize());
  return out;
}

absl::StatusOr<DatagenReport> GenerateDataset(const DatagenOptions& o) {
  if (absl::Status st = o.Validate(); !st.ok()) return st;
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  struct Job {
    std::string cat, split, defect;
    int index;
    bool subtle;
    std::string label;  // the labels.csv row, filled by the worker
  };
  std::vector<Job> jobs;
  const std::vector<std::string> cats = o.categories.empty() ? DatagenCategories() : o.categories;
  for (const std::string& cat : cats) {
    for (int i = 0; i < o.train; ++i) jobs.push_back({cat, "train", "good", i, false, ""});
    for (int i = 0; i < o.test_good; ++i) jobs.push_back({cat, "test", "good", i, false, ""});
    for (const std::string& d : DatagenDefects()) {
      for (int i = 0; i < o.test_per_defect; ++i)
        jobs.push_back({cat, "test", d, i, i % 5 < 2, ""});  // 2 of 5 subtle
    }
  }
  std::error_code ec;
  for (const Job& j : jobs) {
    fs::create_directories(fs::path(o.out) / j.cat / j.split / j.defect, ec);
    if (j.defect != "good")
      fs::create_directories(fs::path(o.out) / j.cat / "ground_truth" / j.defect, ec);
  }
  const std::vector<int> png = {cv::IMWRITE_PNG_COMPRESSION, 1};
  std::atomic<size_t> next{0};
  std::mutex error_mu;
  absl::Status error;
  auto worker = [&] {
    for (size_t k = next++; k < jobs.size(); k = next++) {
      Job& j = jobs[k];
      auto img = Synthesize(j.cat, j.defect, j.subtle,
                            Mix(o.seed, j.cat, j.split + "/" + j.defect, j.index), o.size);
      const std::string name = absl::StrFormat("%03d", j.index);
      const fs::path root = fs::path(o.out) / j.cat;
      absl::Status st = img.status();
      if (st.ok()) {
        const cv::Mat m(o.size, o.size, img->channels == 3 ? CV_8UC3 : CV_8UC1, img->pixels.data());
        const fs::path path = root / j.split / j.defect / (name + ".png");
        if (!cv::imwrite(path.string(), m, png))
          st = absl::InternalError(absl::StrCat("cannot write ", path.string()));
      }
      if (st.ok() && j.defect != "good") {
        const cv::Mat mask(o.size, o.size, CV_8UC1, img->mask.data());
        const fs::path path = root / "ground_truth" / j.defect / (name + "_mask.png");
        if (!cv::imwrite(path.string(), mask, png))
          st = absl::InternalError(absl::StrCat("cannot write ", path.string()));
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (error.ok()) error = st;
        return;
      }
      j.label = absl::StrFormat("%s/%s/%s.png,%s,%d,%s,%s,%.6f,%.3f\n", j.split, j.defect, name,
                                j.split, j.defect == "good" ? 0 : 1, j.defect, img->difficulty,
                                img->area_fraction, img->contrast);
    }
  };
  const int threads = std::max(1, std::min<int>(o.threads, static_cast<int>(jobs.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (!error.ok()) return error;

  DatagenReport report;
  std::map<std::string, std::string> labels;
  for (const Job& j : jobs) {
    std::string& l = labels[j.cat];
    if (l.empty()) l = "path,split,label,defect,difficulty,area_fraction,contrast\n";
    l += j.label;
    ++report.images;
    report.defective += j.defect != "good";
    report.subtle += j.subtle;
  }
  for (const auto& [cat, text] : labels) {
    std::ofstream out(fs::path(o.out) / cat / "labels.csv");
    out << text;
    if (!out) return absl::InternalError(absl::StrCat("cannot write labels.csv for ", cat));
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace invad::tools

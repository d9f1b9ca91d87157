#include "preprocess/preprocess.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"

namespace invad::preprocess {

absl::Status InputSpec::Validate() const {
  if (width < 8 || width > 8192 || height < 8 || height > 8192) {
    return absl::InvalidArgumentError(
        absl::StrCat("input.width/height must be in [8, 8192], got ", width, "x", height));
  }
  const size_t ch = static_cast<size_t>(channels());
  if (mean.size() != ch)
    return absl::InvalidArgumentError(absl::StrCat("input.mean needs ", ch, " values"));
  if (std.size() != ch)
    return absl::InvalidArgumentError(absl::StrCat("input.std needs ", ch, " values"));
  for (float s : std) {
    if (!(s > 0)) return absl::InvalidArgumentError("input.std values must be > 0");
  }
  if (!(uint16_scale > 0)) return absl::InvalidArgumentError("input.uint16_scale must be > 0");
  return absl::OkStatus();
}

namespace {

// ---- PIL's resampling (libImaging/Resample.c), bilinear filter, 8 bits per channel --------------

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;      // per output: xmin, xmax (count)
  std::vector<double> weights;  // per output: ksize weights
};

Coeffs PrecomputeCoeffs(int in_size, int out_size) {
  Coeffs c;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // bilinear support = 1
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0.0);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &c.weights[static_cast<size_t>(xx) * c.ksize];
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double arg = (x + xmin - center + 0.5) * ss;
      if (arg < 0) arg = -arg;
      const double w = arg < 1.0 ? 1.0 - arg : 0.0;
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

std::vector<int32_t> FixedPoint(const std::vector<double>& w) {
  std::vector<int32_t> k(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    k[i] = w[i] < 0 ? static_cast<int32_t>(-0.5 + w[i] * (1 << kPrecisionBits))
                    : static_cast<int32_t>(0.5 + w[i] * (1 << kPrecisionBits));
  }
  return k;
}

inline uint8_t Clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits) << 8) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

}  // namespace

std::vector<uint8_t> ResizeAntialias8(const uint8_t* in, int in_w, int in_h, int channels,
                                      int out_w, int out_h) {
  // Horizontal pass first, then vertical, each rounding to 8 bits, as PIL does.
  std::vector<uint8_t> tmp;
  const uint8_t* src = in;
  int cur_w = in_w;
  if (out_w != in_w) {
    const Coeffs c = PrecomputeCoeffs(in_w, out_w);
    const std::vector<int32_t> k = FixedPoint(c.weights);
    tmp.resize(static_cast<size_t>(out_w) * in_h * channels);
    for (int y = 0; y < in_h; ++y) {
      const uint8_t* row = in + static_cast<size_t>(y) * in_w * channels;
      uint8_t* o = tmp.data() + static_cast<size_t>(y) * out_w * channels;
      for (int xx = 0; xx < out_w; ++xx) {
        const int xmin = c.bounds[2 * xx], xmax = c.bounds[2 * xx + 1];
        const int32_t* kk = &k[static_cast<size_t>(xx) * c.ksize];
        for (int ch = 0; ch < channels; ++ch) {
          int32_t ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < xmax; ++x) ss += row[(x + xmin) * channels + ch] * kk[x];
          o[xx * channels + ch] = Clip8(ss);
        }
      }
    }
    src = tmp.data();
    cur_w = out_w;
  }
  if (out_h == in_h) {
    if (src == in)
      return std::vector<uint8_t>(in, in + static_cast<size_t>(in_w) * in_h * channels);
    return tmp;
  }
  const Coeffs c = PrecomputeCoeffs(in_h, out_h);
  const std::vector<int32_t> k = FixedPoint(c.weights);
  std::vector<uint8_t> out(static_cast<size_t>(cur_w) * out_h * channels);
  const size_t stride = static_cast<size_t>(cur_w) * channels;
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[2 * yy], ymax = c.bounds[2 * yy + 1];
    const int32_t* kk = &k[static_cast<size_t>(yy) * c.ksize];
    uint8_t* o = out.data() + yy * stride;
    for (size_t x = 0; x < stride; ++x) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += src[(y + ymin) * stride + x] * kk[y];
      o[x] = Clip8(ss);
    }
  }
  return out;
}

namespace {

// The same filter in float, for 16-bit images (no intermediate rounding).
cv::Mat ResizeAntialiasFloat(const cv::Mat& in, int out_w, int out_h) {
  const int ch = in.channels();
  cv::Mat src = in;
  if (out_w != in.cols) {
    const Coeffs c = PrecomputeCoeffs(in.cols, out_w);
    cv::Mat tmp(in.rows, out_w, CV_32FC(ch));
    for (int y = 0; y < in.rows; ++y) {
      const float* row = src.ptr<float>(y);
      float* o = tmp.ptr<float>(y);
      for (int xx = 0; xx < out_w; ++xx) {
        const int xmin = c.bounds[2 * xx], xmax = c.bounds[2 * xx + 1];
        const double* kk = &c.weights[static_cast<size_t>(xx) * c.ksize];
        for (int k = 0; k < ch; ++k) {
          double s = 0;
          for (int x = 0; x < xmax; ++x) s += row[(x + xmin) * ch + k] * kk[x];
          o[xx * ch + k] = static_cast<float>(s);
        }
      }
    }
    src = tmp;
  }
  if (out_h == src.rows) return src;
  const Coeffs c = PrecomputeCoeffs(src.rows, out_h);
  cv::Mat out(out_h, src.cols, CV_32FC(ch));
  const int n = src.cols * ch;
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[2 * yy], ymax = c.bounds[2 * yy + 1];
    const double* kk = &c.weights[static_cast<size_t>(yy) * c.ksize];
    float* o = out.ptr<float>(yy);
    for (int x = 0; x < n; ++x) {
      double s = 0;
      for (int y = 0; y < ymax; ++y) s += src.ptr<float>(y + ymin)[x] * kk[y];
      o[x] = static_cast<float>(s);
    }
  }
  return out;
}

absl::Status CheckSize(int64_t w, int64_t h, const DecodeLimits& limits) {
  if (w <= 0 || h <= 0)
    return absl::InvalidArgumentError(absl::StrCat("image has no pixels (", w, "x", h, ")"));
  if (w * h > limits.max_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("image is ", w, "x", h, " = ", w * h,
                                                   " pixels; the limit is ", limits.max_pixels));
  }
  return absl::OkStatus();
}

}  // namespace

const char* DetectImageFormat(std::string_view b) {
  auto starts = [&](std::string_view magic) { return b.substr(0, magic.size()) == magic; };
  if (starts("\x89PNG\r\n\x1a\n")) return "png";
  if (starts("\xff\xd8\xff")) return "jpeg";
  if (starts("BM")) return "bmp";
  if (starts(std::string_view("II*\0", 4)) || starts(std::string_view("MM\0*", 4))) return "tiff";
  if (b.size() >= 3 && b[0] == 'P' && (b[1] == '5' || b[1] == '6') &&
      std::isspace(static_cast<unsigned char>(b[2]))) {
    return "pnm";
  }
  return nullptr;
}

absl::StatusOr<Image> DecodeImage(std::string_view encoded, const DecodeLimits& limits) {
  if (encoded.empty()) return absl::InvalidArgumentError("image is empty");
  // Only these formats reach OpenCV: its other decoders are not hardened (its DICOM reader aborts
  // the process on malformed input; others decode through temporary files).
  if (DetectImageFormat(encoded) == nullptr) {
    return absl::InvalidArgumentError(
        "unsupported image format: expected PNG, JPEG, BMP, TIFF or binary PNM (P5/P6)");
  }
  if (static_cast<int64_t>(encoded.size()) > limits.max_encoded_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "encoded image is ", encoded.size(), " bytes; the limit is ", limits.max_encoded_bytes));
  }
  cv::Mat m;
  try {
    const cv::Mat buf(1, static_cast<int>(encoded.size()), CV_8U,
                      const_cast<char*>(encoded.data()));
    m = cv::imdecode(buf, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode image: ", e.what()));
  }
  if (m.empty())
    return absl::InvalidArgumentError("cannot decode image: unknown format or corrupt data");
  if (absl::Status s = CheckSize(m.cols, m.rows, limits); !s.ok()) return s;
  if (m.depth() != CV_8U && m.depth() != CV_16U) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported sample depth (OpenCV depth ", m.depth(), ")"));
  }
  try {
    if (m.channels() == 4) cv::cvtColor(m, m, cv::COLOR_BGRA2BGR);
    if (m.channels() == 2) cv::extractChannel(m, m, 0);  // gray + alpha
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot convert image: ", e.what()));
  }
  if (m.channels() != 1 && m.channels() != 3) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported channel count ", m.channels()));
  }
  Image img;
  img.width = m.cols;
  img.height = m.rows;
  img.channels = m.channels();
  img.bits = m.depth() == CV_16U ? 16 : 8;
  img.order = img.channels == 1 ? ChannelOrder::kGray : ChannelOrder::kBgr;
  const size_t row = static_cast<size_t>(m.cols) * m.elemSize();
  img.data.resize(row * m.rows);
  for (int y = 0; y < m.rows; ++y) std::memcpy(img.data.data() + y * row, m.ptr(y), row);
  return img;
}

absl::StatusOr<Image> ReadImageFile(const std::string& path, const DecodeLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open image ", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto img = DecodeImage(bytes, limits);
  if (!img.ok())
    return absl::Status(img.status().code(), absl::StrCat(path, ": ", img.status().message()));
  return img;
}

absl::StatusOr<Image> FromRawPixels(const RawPixels& raw, const DecodeLimits& limits) {
  if (raw.channels != 1 && raw.channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw image: channels must be 1 or 3, got ", raw.channels));
  }
  if (raw.bits != 8 && raw.bits != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw image: bits must be 8 or 16, got ", raw.bits));
  }
  if (absl::Status s = CheckSize(raw.width, raw.height, limits); !s.ok()) return s;
  const int64_t row = static_cast<int64_t>(raw.width) * raw.channels * (raw.bits / 8);
  const int64_t stride = raw.row_stride == 0 ? row : raw.row_stride;
  if (stride < row) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw image: row_stride ", stride, " < row size ", row));
  }
  const int64_t needed = stride * (raw.height - 1) + row;
  if (static_cast<int64_t>(raw.data.size()) < needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw image: ", raw.data.size(), " bytes, but ", raw.width, "x", raw.height, "x",
        raw.channels, " at ", raw.bits, " bits with row_stride ", stride, " needs ", needed));
  }
  Image img;
  img.width = raw.width;
  img.height = raw.height;
  img.channels = raw.channels;
  img.bits = raw.bits;
  img.order = raw.channels == 1                  ? ChannelOrder::kGray
              : raw.order == ChannelOrder::kGray ? ChannelOrder::kRgb
                                                 : raw.order;
  img.data.resize(static_cast<size_t>(row) * raw.height);
  for (int y = 0; y < raw.height; ++y)
    std::memcpy(img.data.data() + y * row, raw.data.data() + y * stride, row);
  return img;
}

namespace {

// Steps 1-3 of Preprocess: channels, resize, normalise.
absl::Status ConvertResizeNormalise(const Image& image, const InputSpec& spec, float* out) {
  if (image.width <= 0 || image.height <= 0 || (image.channels != 1 && image.channels != 3) ||
      (image.bits != 8 && image.bits != 16) ||
      image.data.size() !=
          static_cast<size_t>(image.width) * image.height * image.channels * (image.bits / 8)) {
    return absl::InvalidArgumentError("malformed image");
  }
  try {
    const int type = CV_MAKETYPE(image.bits == 16 ? CV_16U : CV_8U, image.channels);
    cv::Mat m(image.height, image.width, type, const_cast<uint8_t*>(image.data.data()));
    // 1. Channels: to the network's order (RGB conversion uses ITU-R 601 luma for gray, like PIL).
    cv::Mat conv;
    const int want = spec.channels();
    if (want == 1) {
      if (image.channels == 3) {
        cv::cvtColor(m, conv,
                     image.order == ChannelOrder::kRgb ? cv::COLOR_RGB2GRAY : cv::COLOR_BGR2GRAY);
      } else {
        conv = m;
      }
    } else if (image.channels == 1) {
      cv::cvtColor(m, conv, cv::COLOR_GRAY2BGR);  // three equal planes; order is moot
    } else {
      const bool same = image.order == spec.order;
      if (same) {
        conv = m;
      } else {
        cv::cvtColor(m, conv, cv::COLOR_BGR2RGB);  // swap R and B either way
      }
    }
    // 2. Resize, then 3. scale to [0, 1] and normalise per channel into CHW planes.
    const int W = spec.width, H = spec.height;
    const bool same_size = conv.cols == W && conv.rows == H;
    const int64_t plane = static_cast<int64_t>(W) * H;
    if (image.bits == 8 && spec.resize == ResizeMethod::kAntialiasBilinear) {
      cv::Mat packed = conv.isContinuous() ? conv : conv.clone();
      std::vector<uint8_t> r =
          same_size ? std::vector<uint8_t>(packed.data, packed.data + plane * want)
                    : ResizeAntialias8(packed.data, conv.cols, conv.rows, want, W, H);
      for (int c = 0; c < want; ++c) {
        const float mean = spec.mean[c], sd = spec.std[c];
        float* o = out + c * plane;
        for (int64_t p = 0; p < plane; ++p)
          o[p] = (static_cast<float>(r[p * want + c]) / 255.0f - mean) / sd;
      }
      return absl::OkStatus();
    }
    cv::Mat f;
    const float scale = image.bits == 16 ? 1.0f / spec.uint16_scale : 1.0f / 255.0f;
    conv.convertTo(f, CV_32F, 1.0);
    cv::Mat resized;
    if (same_size) {
      resized = f;
    } else if (spec.resize == ResizeMethod::kAntialiasBilinear) {
      resized = ResizeAntialiasFloat(f, W, H);
    } else {
      cv::resize(f, resized, cv::Size(W, H), 0, 0,
                 spec.resize == ResizeMethod::kArea ? cv::INTER_AREA : cv::INTER_LINEAR);
    }
    if (!resized.isContinuous()) resized = resized.clone();
    const float* r = resized.ptr<float>();
    for (int c = 0; c < want; ++c) {
      const float mean = spec.mean[c], sd = spec.std[c];
      float* o = out + c * plane;
      for (int64_t p = 0; p < plane; ++p) o[p] = (r[p * want + c] * scale - mean) / sd;
    }
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("preprocessing failed: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Preprocess(const Image& image, const InputSpec& spec, float* out, Pose* pose) {
  if (absl::Status s = spec.Validate(); !s.ok()) return s;
  if (absl::Status s = ConvertResizeNormalise(image, spec, out); !s.ok()) return s;
  Pose p;
  p.width = spec.width;
  p.height = spec.height;
  if (spec.pose == PoseMode::kMoment) {
    absl::StatusOr<Pose> r = NormalisePose(out, spec.channels(), spec.width, spec.height);
    if (!r.ok()) return r.status();
    p = *r;
  }
  if (pose != nullptr) *pose = p;
  return absl::OkStatus();
}

absl::StatusOr<Pose> NormalisePose(float* planes, int channels, int width, int height) {
  if (planes == nullptr || channels < 1 || width < 2 || height < 2) {
    return absl::InvalidArgumentError("pose normalisation needs at least one 2×2 plane");
  }
  Pose pose;
  pose.width = width;
  pose.height = height;
  const int64_t n = static_cast<int64_t>(width) * height;
  std::vector<double> g(static_cast<size_t>(n), 0.0);
  for (int c = 0; c < channels; ++c) {
    const float* pl = planes + c * n;
    for (int64_t i = 0; i < n; ++i) g[i] += pl[i];
  }
  double lo = g[0], hi = g[0];
  for (double& v : g) {
    v /= channels;
    if (!std::isfinite(v))
      return absl::InvalidArgumentError("pose normalisation: non-finite input");
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!(hi > lo)) return pose;  // a flat image: no part
  // Two-class isodata threshold.
  double t = 0;
  for (double v : g) t += v;
  t /= static_cast<double>(n);
  for (int it = 0; it < 100; ++it) {
    double s0 = 0, s1 = 0;
    int64_t n0 = 0, n1 = 0;
    for (double v : g) {
      if (v > t) {
        s1 += v;
        ++n1;
      } else {
        s0 += v;
        ++n0;
      }
    }
    if (n0 == 0 || n1 == 0) return pose;
    const double next = 0.5 * (s0 / n0 + s1 / n1);
    const bool done = std::abs(next - t) <= 1e-6 * (hi - lo);
    t = next;
    if (done) break;
  }
  // The foreground is the class holding fewer border pixels.
  int64_t border = 0, border_high = 0;
  auto count = [&](int x, int y) {
    ++border;
    border_high += g[static_cast<size_t>(y) * width + x] > t;
  };
  for (int x = 0; x < width; ++x) {
    count(x, 0);
    count(x, height - 1);
  }
  for (int y = 1; y + 1 < height; ++y) {
    count(0, y);
    count(width - 1, y);
  }
  const bool high = border_high * 2 <= border;
  const int64_t border_fg = high ? border_high : border - border_high;
  if (border_fg > 0.05 * static_cast<double>(border)) return pose;
  double area = 0, sx = 0, sy = 0, sg = 0;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double v = g[static_cast<size_t>(y) * width + x];
      if ((v > t) != high) continue;
      area += 1;
      sx += x;
      sy += y;
      sg += v;
    }
  }
  if (area < 0.01 * static_cast<double>(n)) return pose;
  const double cx = sx / area, cy = sy / area, mean_g = sg / area;
  double mx = 0, my = 0;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double v = g[static_cast<size_t>(y) * width + x];
      if ((v > t) != high) continue;
      mx += (v - mean_g) * (x - cx);
      my += (v - mean_g) * (y - cy);
    }
  }
  pose.applied = true;
  pose.center_x = cx;
  pose.center_y = cy;
  pose.angle = std::atan2(my, mx);
  // Canonical pixel u shows the image at c + R(u − o).
  const double co = std::cos(pose.angle), si = std::sin(pose.angle);
  const double ox = 0.5 * (width - 1), oy = 0.5 * (height - 1);
  const cv::Matx23d m(co, -si, cx - co * ox + si * oy, si, co, cy - si * ox - co * oy);
  try {
    for (int c = 0; c < channels; ++c) {
      cv::Mat plane(height, width, CV_32F, planes + c * n);
      cv::Mat warped;
      cv::warpAffine(plane, warped, m, plane.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                     cv::BORDER_REPLICATE);
      warped.copyTo(plane);
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("pose normalisation failed: ", e.what()));
  }
  return pose;
}

absl::Status MapToImageFrame(const Pose& pose, const float* map, int map_width, int map_height,
                             float* out) {
  if (map == nullptr || out == nullptr || map_width < 1 || map_height < 1) {
    return absl::InvalidArgumentError("MapToImageFrame: empty map");
  }
  const int64_t n = static_cast<int64_t>(map_width) * map_height;
  if (!pose.applied) {
    std::copy(map, map + n, out);
    return absl::OkStatus();
  }
  if (pose.width < 1 || pose.height < 1) {
    return absl::InvalidArgumentError("MapToImageFrame: the pose has no network size");
  }
  // Map pixel q → network pixel p = D·q + d → canonical u = o + Rᵀ(p − c) → map pixel Dm·u + dm.
  const double sx = static_cast<double>(map_width) / pose.width;
  const double sy = static_cast<double>(map_height) / pose.height;
  const double co = std::cos(pose.angle), si = std::sin(pose.angle);
  const double ox = 0.5 * (pose.width - 1), oy = 0.5 * (pose.height - 1);
  const double dx = 0.5 / sx - 0.5 - pose.center_x, dy = 0.5 / sy - 0.5 - pose.center_y;
  // Rᵀ = [co si; −si co].
  const cv::Matx23d m(co, si * sx / sy, sx * (ox + co * dx + si * dy) + 0.5 * sx - 0.5,  //
                      -si * sy / sx, co, sy * (oy - si * dx + co * dy) + 0.5 * sy - 0.5);
  try {
    const cv::Mat in(map_height, map_width, CV_32F, const_cast<float*>(map));
    cv::Mat dst(map_height, map_width, CV_32F, out);
    cv::warpAffine(in, dst, m, in.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                   cv::BORDER_REPLICATE);
    if (dst.data != reinterpret_cast<uchar*>(out)) {
      return absl::InternalError("MapToImageFrame: OpenCV reallocated the output");
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("mapping to the image frame failed: ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<core::Tensor> PreprocessEncoded(std::string_view encoded, const InputSpec& spec,
                                               const DecodeLimits& limits, Pose* pose) {
  auto img = DecodeImage(encoded, limits);
  if (!img.ok()) return img.status();
  core::Tensor t({1, spec.channels(), spec.height, spec.width});
  if (absl::Status s = Preprocess(*img, spec, t.data(), pose); !s.ok()) return s;
  return t;
}

absl::StatusOr<core::Tensor> PreprocessFile(const std::string& path, const InputSpec& spec,
                                            const DecodeLimits& limits, Pose* pose) {
  auto img = ReadImageFile(path, limits);
  if (!img.ok()) return img.status();
  core::Tensor t({1, spec.channels(), spec.height, spec.width});
  if (absl::Status s = Preprocess(*img, spec, t.data(), pose); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return t;
}

}  // namespace invad::preprocess

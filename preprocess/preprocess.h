// File: preprocess/preprocess.h
//
// The one image-preprocessing implementation: decode (OpenCV), channel order, resize, normalise.
// Training, evaluation and serving all call these functions, so they cannot disagree: the same
// image bytes give bit-identical network inputs everywhere (tests/integration/preprocess_parity).
//
//   auto image = DecodeImage(png_bytes);                  // or FromRawPixels(...)
//   core::Tensor x({1, spec.channels(), spec.height, spec.width});
//   Preprocess(*image, spec, x.sample(0));                // CHW float32, normalised
//
// The header is OpenCV-free; OpenCV exceptions stop inside preprocess.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "core/tensor.h"

namespace invad::preprocess {

enum class ChannelOrder { kRgb, kBgr, kGray };
enum class ResizeMethod {
  kAntialiasBilinear,  // PIL Image.resize(BILINEAR): bit-exact on 8-bit images
  kArea,               // OpenCV INTER_AREA
  kBilinear,           // OpenCV INTER_LINEAR (no antialiasing)
};

// Pose normalisation for parts that come at any angle and position (a washer on a belt):
enum class PoseMode {
  kNone,
  // After resizing, the part is turned and moved into a canonical pose: the foreground is the
  // class of a two-class (isodata) threshold of the grey network image that holds fewer of the
  // border pixels; the image is rotated about the foreground's centroid so that its intensity
  // moment Σ (g − ḡ)·(p − c) over the foreground points along +x, and the centroid is moved to the
  // image centre (bilinear, border replicated). Images whose foreground covers more than 5 % of the
  // border or less than 1 % of the image are left as they are (no single part).
  kMoment,
};

// What the network expects. Built from a bundle's manifest (bundle::ToInputSpec).
struct InputSpec {
  int width = 256;
  int height = 256;
  ChannelOrder order = ChannelOrder::kRgb;
  ResizeMethod resize = ResizeMethod::kAntialiasBilinear;
  std::vector<float> mean{0.485f, 0.456f, 0.406f};  // ImageNet
  std::vector<float> std{0.229f, 0.224f, 0.225f};
  float uint16_scale = 65535.0f;  // 16-bit values are divided by this
  PoseMode pose = PoseMode::kNone;

  int channels() const { return order == ChannelOrder::kGray ? 1 : 3; }
  absl::Status Validate() const;  // InvalidArgument naming the field
};

struct DecodeLimits {
  int64_t max_encoded_bytes = 64ll << 20;  // larger payloads are refused before decoding
  int64_t max_pixels = 100'000'000;        // width·height, checked before allocating
};

// A decoded image: interleaved, tightly packed rows, 8 or 16 bits per sample, 1 or 3 channels.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;                         // 1 or 3 (alpha is dropped on decode)
  int bits = 8;                             // 8 or 16
  ChannelOrder order = ChannelOrder::kBgr;  // of 3-channel data; kGray for 1 channel
  std::vector<uint8_t> data;  // width·height·channels·(bits/8) bytes (uint16 native-endian)
};

// "png", "jpeg", "bmp", "tiff" or "pnm" (binary P5/P6) by magic bytes; nullptr for anything else.
const char* DetectImageFormat(std::string_view encoded);

// PNG, JPEG, BMP, TIFF or binary PNM; other formats are refused before OpenCV sees them.
// InvalidArgument for empty, truncated, unsupported or oversized data, never a crash.
absl::StatusOr<Image> DecodeImage(std::string_view encoded, const DecodeLimits& limits = {});
absl::StatusOr<Image> ReadImageFile(const std::string& path, const DecodeLimits& limits = {});

// Raw pixels from a camera: `row_stride` bytes per row (>= width·channels·bits/8).
struct RawPixels {
  int width = 0;
  int height = 0;
  int channels = 0;        // 1 or 3
  int bits = 8;            // 8 or 16
  int64_t row_stride = 0;  // 0 = tightly packed
  ChannelOrder order = ChannelOrder::kRgb;
  std::string_view data;
};
absl::StatusOr<Image> FromRawPixels(const RawPixels& raw, const DecodeLimits& limits = {});

// Where a pose-normalised network input came from: canonical pixel u (network pixels, (0, 0) the
// first pixel's centre) shows the resized image at c + R(angle)·(u − o), o the network image's
// centre. Identity when no pose was applied.
struct Pose {
  bool applied = false;
  double center_x = 0, center_y = 0;  // the part's centroid in the resized image
  double angle = 0;                   // radians; the part's moment direction in the resized image
  int width = 0, height = 0;          // the network input's size
};

// Converts channels, resizes and normalises into `out`: spec.channels() planes of
// spec.height·spec.width floats (CHW); with spec.pose, then pose-normalises them (`pose`, if
// given, says how).
absl::Status Preprocess(const Image& image, const InputSpec& spec, float* out,
                        Pose* pose = nullptr);

// The pose step alone, in place on `channels` planes of width·height floats (Preprocess calls
// it; invad-train uses it to try pose normalisation on images it has loaded without it).
// InvalidArgument for a bad size or non-finite values.
absl::StatusOr<Pose> NormalisePose(float* planes, int channels, int width, int height);

// Brings a map of the canonical frame (map_width × map_height, covering the network input, e.g.
// the anomaly map at latent or network resolution) back into the resized image's frame at the same
// resolution (bilinear, border replicated). Copies the map when `pose` is not applied.
absl::Status MapToImageFrame(const Pose& pose, const float* map, int map_width, int map_height,
                             float* out);

// Convenience: decode + preprocess into a [1, ch, H, W] tensor.
absl::StatusOr<core::Tensor> PreprocessEncoded(std::string_view encoded, const InputSpec& spec,
                                               const DecodeLimits& limits = {},
                                               Pose* pose = nullptr);
absl::StatusOr<core::Tensor> PreprocessFile(const std::string& path, const InputSpec& spec,
                                            const DecodeLimits& limits = {}, Pose* pose = nullptr);

// PIL-compatible antialiased bilinear resize of 8-bit interleaved data (exposed for tests).
std::vector<uint8_t> ResizeAntialias8(const uint8_t* in, int in_w, int in_h, int channels,
                                      int out_w, int out_h);

}  // namespace invad::preprocess

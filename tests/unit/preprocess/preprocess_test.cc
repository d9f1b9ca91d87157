#include "preprocess/preprocess.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"

namespace invad::preprocess {
namespace {

using ::invad::testing::StatusIs;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

std::string Encode(const cv::Mat& m, const char* ext = ".png") {
  std::vector<uchar> buf;
  cv::imencode(ext, m, buf);
  return std::string(buf.begin(), buf.end());
}

cv::Mat RandomBgr(int h, int w, uint64_t seed) {
  cv::Mat m(h, w, CV_8UC3);
  cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(255));
  (void)seed;
  return m;
}

InputSpec Spec(int size = 16) {
  InputSpec s;
  s.width = s.height = size;
  return s;
}

TEST(PreprocessTest, NormalisesLikeToTensorAndNormalize) {
  cv::Mat m(16, 16, CV_8UC3, cv::Scalar(10, 128, 250));  // B, G, R
  auto t = PreprocessEncoded(Encode(m), Spec());
  ASSERT_OK(t);
  EXPECT_EQ(t->shape(), (core::Shape{1, 3, 16, 16}));
  const int64_t plane = 256;
  EXPECT_FLOAT_EQ(t->data()[0], (250 / 255.0f - 0.485f) / 0.229f);             // R plane first
  EXPECT_FLOAT_EQ(t->data()[plane], (128 / 255.0f - 0.456f) / 0.224f);         // G
  EXPECT_FLOAT_EQ(t->data()[2 * plane + 7], (10 / 255.0f - 0.406f) / 0.225f);  // B
}

TEST(PreprocessTest, RawRgbAndEncodedBgrGiveTheSameInput) {
  cv::Mat bgr = RandomBgr(40, 50, 1);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  auto from_png = PreprocessEncoded(Encode(bgr), Spec());
  RawPixels raw{50,
                40,
                3,
                8,
                0,
                ChannelOrder::kRgb,
                std::string_view(reinterpret_cast<const char*>(rgb.data), rgb.total() * 3)};
  auto img = FromRawPixels(raw);
  ASSERT_OK(img);
  core::Tensor t({1, 3, 16, 16});
  ASSERT_OK(Preprocess(*img, Spec(), t.data()));
  ASSERT_OK(from_png);
  EXPECT_EQ(0, std::memcmp(t.data(), from_png->data(), t.numel() * sizeof(float)));
}

TEST(PreprocessTest, RowStrideIsHonoured) {
  std::string buf(3 * 8, '\0');  // 3 rows of 5 gray pixels, stride 8
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 5; ++x) buf[y * 8 + x] = static_cast<char>(y * 50 + x);
  }
  auto img = FromRawPixels({5, 3, 1, 8, 8, ChannelOrder::kGray, buf});
  ASSERT_OK(img);
  EXPECT_EQ(img->data[5], 50);  // second row starts after the padding
  EXPECT_THAT(FromRawPixels({5, 3, 1, 8, 4, ChannelOrder::kGray, buf}),
              StatusIs(kInvalid, "row_stride"));
}

TEST(PreprocessTest, SixteenBitUsesTheBundleScale) {
  cv::Mat m(8, 8, CV_16UC1, cv::Scalar(4095));
  InputSpec s = Spec(8);
  s.order = ChannelOrder::kGray;
  s.mean = {0.0f};
  s.std = {1.0f};
  s.uint16_scale = 4095.0f;  // 12-bit data
  auto t = PreprocessEncoded(Encode(m), s);
  ASSERT_OK(t);
  EXPECT_FLOAT_EQ(t->data()[0], 1.0f);
}

TEST(PreprocessTest, GrayNetworkFromColourImage) {
  cv::Mat m(8, 8, CV_8UC3, cv::Scalar(0, 0, 255));  // pure red
  InputSpec s = Spec(8);
  s.order = ChannelOrder::kGray;
  s.mean = {0.0f};
  s.std = {1.0f};
  auto t = PreprocessEncoded(Encode(m), s);
  ASSERT_OK(t);
  EXPECT_NEAR(t->data()[0], 0.299f, 2.0f / 255);  // ITU-R 601 luma
}

TEST(PreprocessTest, AntialiasedDownscaleOfConstantStaysConstant) {
  std::vector<uint8_t> in(512 * 384 * 3, 77);
  std::vector<uint8_t> out = ResizeAntialias8(in.data(), 512, 384, 3, 256, 256);
  ASSERT_EQ(out.size(), 256u * 256 * 3);
  for (uint8_t v : out) ASSERT_EQ(v, 77);
}

TEST(PreprocessTest, BadInputsAreInvalidArgument) {
  EXPECT_THAT(DecodeImage(""), StatusIs(kInvalid, "empty"));
  std::mt19937 rng(3);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  EXPECT_THAT(DecodeImage(noise), StatusIs(kInvalid));
  const std::string png = Encode(RandomBgr(64, 64, 2));
  EXPECT_THAT(DecodeImage(png.substr(0, png.size() / 2)), StatusIs(kInvalid));
  EXPECT_THAT(DecodeImage(png, {.max_encoded_bytes = 100}), StatusIs(kInvalid, "limit"));
  EXPECT_THAT(DecodeImage(png, {.max_pixels = 1000}), StatusIs(kInvalid, "pixels"));
  EXPECT_THAT(FromRawPixels({0, 0, 3, 8, 0, ChannelOrder::kRgb, ""}),
              StatusIs(kInvalid, "no pixels"));
  EXPECT_THAT(FromRawPixels({4, 4, 3, 8, 0, ChannelOrder::kRgb, std::string(47, 'x')}),
              StatusIs(kInvalid, "needs 48"));
  EXPECT_THAT(FromRawPixels({100000, 100000, 1, 8, 0, ChannelOrder::kGray, "x"}),
              StatusIs(kInvalid, "limit"));
  EXPECT_THAT(FromRawPixels({4, 4, 2, 8, 0, ChannelOrder::kRgb, std::string(32, 'x')}),
              StatusIs(kInvalid, "channels"));
  EXPECT_THAT(FromRawPixels({4, 4, 1, 12, 0, ChannelOrder::kGray, std::string(32, 'x')}),
              StatusIs(kInvalid, "bits"));
  InputSpec bad = Spec();
  bad.std = {1.0f};
  Image img = *DecodeImage(png);
  std::vector<float> out(3 * 16 * 16);
  EXPECT_THAT(Preprocess(img, bad, out.data()), StatusIs(kInvalid, "std"));
}

TEST(PreprocessTest, OnlySupportedFormatsReachTheDecoder) {
  EXPECT_STREQ(DetectImageFormat(Encode(RandomBgr(8, 8, 1), ".png")), "png");
  EXPECT_STREQ(DetectImageFormat(Encode(RandomBgr(8, 8, 1), ".jpg")), "jpeg");
  EXPECT_STREQ(DetectImageFormat(Encode(RandomBgr(8, 8, 1), ".bmp")), "bmp");
  EXPECT_STREQ(DetectImageFormat(Encode(RandomBgr(8, 8, 1), ".tiff")), "tiff");
  EXPECT_STREQ(DetectImageFormat(Encode(RandomBgr(8, 8, 1), ".ppm")), "pnm");
  for (const char* ext : {".png", ".jpg", ".bmp", ".tiff", ".ppm"}) {
    EXPECT_OK(DecodeImage(Encode(RandomBgr(8, 8, 1), ext))) << ext;
  }
  std::string dicom(132, '\0');
  dicom.replace(128, 4, "DICM");
  EXPECT_THAT(DecodeImage(dicom), StatusIs(kInvalid, "unsupported image format"));
  EXPECT_THAT(DecodeImage("GIF89a......"), StatusIs(kInvalid, "unsupported image format"));
}

// Every input a fuzzer crashed on stays here (tests/fuzz/regressions/image/) and must be refused
// cleanly.
TEST(PreprocessTest, FuzzerRegressionsAreRefusedWithoutCrashing) {
  const char* src = std::getenv("INVAD_SOURCE_DIR");
  const std::filesystem::path dir =
      std::filesystem::path(src ? src : ".") / "tests/fuzz/regressions/image";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto img = DecodeImage(bytes);
    if (img.ok()) {
      std::vector<float> out(3 * 16 * 16);
      (void)Preprocess(*img, Spec(), out.data());
    }
    ++n;
  }
  EXPECT_GE(n, 1);
}

// A part at any pose, as invad-datagen's washer: a ring (radii 30-80 px) lit from the side its
// pose angle `theta` points to, with a dark spot at a fixed place on the part (angle theta + 1,
// radius 55), on a plain background. Grey, 8 bits.
cv::Mat Part(double cx, double cy, double theta, int size = 256) {
  cv::Mat m(size, size, CV_8UC1, cv::Scalar(35));
  const double sx = cx + 55 * std::cos(theta + 1), sy = cy + 55 * std::sin(theta + 1);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double dx = x - cx, dy = y - cy, r = std::hypot(dx, dy);
      if (r < 30 || r > 80) continue;
      double v = 150 + 40 * std::cos(std::atan2(dy, dx) - theta);
      if (std::hypot(x - sx, y - sy) < 6) v = 60;
      m.at<uint8_t>(y, x) = static_cast<uint8_t>(std::lround(v));
    }
  }
  return m;
}

InputSpec PoseSpec() {
  InputSpec s = Spec(128);
  s.order = ChannelOrder::kGray;
  s.mean = {0.449f};
  s.std = {0.226f};
  s.pose = PoseMode::kMoment;
  return s;
}

double MeanAbsDiff(const core::Tensor& a, const core::Tensor& b, int margin = 0) {
  const int64_t h = a.dim(2), w = a.dim(3);
  double sum = 0;
  int64_t n = 0;
  for (int64_t y = margin; y < h - margin; ++y) {
    for (int64_t x = margin; x < w - margin; ++x) {
      sum += std::abs(a.data()[y * w + x] - b.data()[y * w + x]);
      ++n;
    }
  }
  return sum / static_cast<double>(n);
}

TEST(PoseTest, PartsAtAnyPoseGiveTheSameCanonicalInput) {
  const double kPi = 3.14159265358979;
  Pose pa, pb;
  auto a = PreprocessEncoded(Encode(Part(120, 131, 0.4)), PoseSpec(), {}, &pa);
  auto b = PreprocessEncoded(Encode(Part(137, 122, 0.4 + 2.5)), PoseSpec(), {}, &pb);
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_TRUE(pa.applied);
  ASSERT_TRUE(pb.applied);
  // Centres in network pixels (half the 256-px image, pixel centres at 0.5·(x + 0.5) − 0.5).
  EXPECT_NEAR(pa.center_x, 0.5 * 120 - 0.25, 1.0);
  EXPECT_NEAR(pa.center_y, 0.5 * 131 - 0.25, 1.0);
  EXPECT_NEAR(pb.center_x, 0.5 * 137 - 0.25, 1.0);
  EXPECT_NEAR(std::remainder(pb.angle - pa.angle - 2.5, 2 * kPi), 0.0, 0.05);
  EXPECT_EQ(pa.width, 128);
  EXPECT_EQ(pa.height, 128);
  // Without pose normalisation the two inputs differ a lot; with it, only by resampling.
  InputSpec plain = PoseSpec();
  plain.pose = PoseMode::kNone;
  auto ra = PreprocessEncoded(Encode(Part(120, 131, 0.4)), plain);
  auto rb = PreprocessEncoded(Encode(Part(137, 122, 0.4 + 2.5)), plain);
  ASSERT_OK(ra);
  ASSERT_OK(rb);
  const double raw = MeanAbsDiff(*ra, *rb), canonical = MeanAbsDiff(*a, *b);
  EXPECT_GT(raw, 0.3);
  EXPECT_LT(canonical, 0.1 * raw) << "raw " << raw << ", canonical " << canonical;
}

TEST(PoseTest, MapsGoBackIntoTheImageFrame) {
  Pose pose;
  auto canonical = PreprocessEncoded(Encode(Part(120, 131, 2.0)), PoseSpec(), {}, &pose);
  InputSpec plain = PoseSpec();
  plain.pose = PoseMode::kNone;
  auto raw = PreprocessEncoded(Encode(Part(120, 131, 2.0)), plain);
  ASSERT_OK(canonical);
  ASSERT_OK(raw);
  // The canonical input itself, brought back, is the plain input up to resampling.
  core::Tensor back({1, 1, 128, 128});
  ASSERT_OK(MapToImageFrame(pose, canonical->data(), 128, 128, back.data()));
  EXPECT_LT(MeanAbsDiff(back, *raw, 4), 0.05);
  // At latent resolution: one hot cell of the canonical frame lands where that place of the part
  // is in the image. The spot sits at angle 1 rad from the pose direction, 55 px out (27.5
  // network pixels): canonical network position o + 27.5·(cos 1, sin 1).
  const double o = 63.5, ux = o + 27.5 * std::cos(1.0), uy = o + 27.5 * std::sin(1.0);
  std::vector<float> cells(16 * 16, 0.0f), framed(16 * 16, -1.0f);
  cells[static_cast<int>(uy / 8) * 16 + static_cast<int>(ux / 8)] = 1.0f;
  ASSERT_OK(MapToImageFrame(pose, cells.data(), 16, 16, framed.data()));
  const int peak =
      static_cast<int>(std::max_element(framed.begin(), framed.end()) - framed.begin());
  const double spot_x = 0.5 * (120 + 55 * std::cos(3.0)) - 0.25;
  const double spot_y = 0.5 * (131 + 55 * std::sin(3.0)) - 0.25;
  EXPECT_NEAR(peak % 16, spot_x / 8, 1.0);
  EXPECT_NEAR(peak / 16, spot_y / 8, 1.0);
  EXPECT_GT(framed[peak], 0.3f);
}

TEST(PoseTest, ImagesWithoutOnePartAndModelsWithoutPoseAreLeftAsTheyAre) {
  InputSpec plain = PoseSpec();
  plain.pose = PoseMode::kNone;
  cv::Mat texture(256, 256, CV_8UC1);
  cv::randu(texture, cv::Scalar(0), cv::Scalar(255));
  cv::Mat flat(256, 256, CV_8UC1, cv::Scalar(90));
  cv::Mat edge = Part(128, 128, 0.0);
  cv::circle(edge, cv::Point(128, 0), 60, cv::Scalar(200), cv::FILLED);  // crosses the border
  for (const cv::Mat& m : {texture, flat, edge}) {
    Pose pose;
    pose.applied = true;
    auto with = PreprocessEncoded(Encode(m), PoseSpec(), {}, &pose);
    auto without = PreprocessEncoded(Encode(m), plain);
    ASSERT_OK(with);
    ASSERT_OK(without);
    EXPECT_FALSE(pose.applied);
    EXPECT_EQ(MeanAbsDiff(*with, *without), 0.0);
  }
  Pose pose;
  ASSERT_OK(PreprocessEncoded(Encode(Part(120, 131, 1.0)), plain, {}, &pose));
  EXPECT_FALSE(pose.applied);
  std::vector<float> map{1, 2, 3, 4}, out(4);
  ASSERT_OK(MapToImageFrame(pose, map.data(), 2, 2, out.data()));
  EXPECT_EQ(out, map);
  EXPECT_THAT(MapToImageFrame(pose, nullptr, 2, 2, out.data()), StatusIs(kInvalid));
  std::vector<float> nan(4, NAN);
  EXPECT_THAT(NormalisePose(nan.data(), 1, 2, 2).status(), StatusIs(kInvalid));
}

}  // namespace
}  // namespace invad::preprocess

// One preprocessing implementation: PIL/torchvision parity (what the official checkpoints saw), and
// bit-identical z0 for the same PNG through the tools' path (file) and the server's path (bytes).
#include <filesystem>
#include <fstream>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "bundle/bundle.h"
#include "bundle/files.h"
#include "preprocess/preprocess.h"
#include "tests/testing/files.h"
#include "tests/testing/python.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_bundle.h"

namespace invad {
namespace {

namespace fs = std::filesystem;

class PreprocessParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("invad_parity_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PreprocessParityTest, BitIdenticalToPilAndTorchvision) {
  INVAD_REQUIRE_PYTHON("numpy, PIL, torchvision");
  ASSERT_EQ(testing::RunPython("tests/integration/python/torchvision_reference.py", dir_.string()),
            0);
  const preprocess::InputSpec spec;  // 256×256 RGB, PIL bilinear, ImageNet mean/std
  for (const char* name : {"down_rgb", "up_rgb", "gray"}) {
    SCOPED_TRACE(name);
    auto ours = preprocess::PreprocessFile((dir_ / (std::string(name) + ".png")).string(), spec);
    ASSERT_OK(ours);
    const std::vector<char> ref =
        ::invad::testing::ReadRaw<char>(dir_ / (std::string(name) + ".f32"));
    ASSERT_EQ(ref.size(), static_cast<size_t>(ours->numel()) * sizeof(float));
    const float* r = reinterpret_cast<const float*>(ref.data());
    int64_t differing = 0;
    for (int64_t i = 0; i < ours->numel(); ++i) differing += ours->data()[i] != r[i];
    EXPECT_EQ(differing, 0) << "of " << ours->numel() << " values";
  }
  // The resampler alone, against PIL's Image.resize(BILINEAR).
  auto img = preprocess::ReadImageFile((dir_ / "down_rgb.png").string());
  ASSERT_OK(img);
  std::vector<uint8_t> rgb = img->data;
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) std::swap(rgb[i], rgb[i + 2]);
  const std::vector<uint8_t> ours =
      preprocess::ResizeAntialias8(rgb.data(), img->width, img->height, 3, 256, 256);
  const std::vector<char> pil = ::invad::testing::ReadRaw<char>(dir_ / "down_rgb.resized.u8");
  ASSERT_EQ(pil.size(), ours.size());
  EXPECT_EQ(0, std::memcmp(pil.data(), ours.data(), ours.size()));
}

TEST_F(PreprocessParityTest, ToolsAndServerPathsGiveBitIdenticalLatents) {
  auto version = testing::WriteTinyBundle((dir_ / "tiny").string());
  ASSERT_OK(version);
  auto model = bundle::LoadModel(*version);
  ASSERT_OK(model);
  // A PNG larger than the network input, so decode, resize and normalise all take part.
  cv::Mat frame(71, 97, CV_8UC3);
  for (int i = 0; i < 71 * 97 * 3; ++i) frame.data[i] = static_cast<uchar>((i * 7919) % 251);
  std::vector<uchar> png;
  ASSERT_TRUE(cv::imencode(".png", frame, png));
  const std::string path = (dir_ / "frame.png").string();
  ASSERT_OK(bundle::WriteFile(path, std::string(png.begin(), png.end())));

  auto from_file = preprocess::PreprocessFile(path, model->input);  // invad-train / invad-eval
  auto bytes = bundle::ReadFile(path);
  ASSERT_OK(bytes);
  auto from_bytes =
      preprocess::PreprocessEncoded(*bytes, model->input);  // invad-server request path
  ASSERT_OK(from_file);
  ASSERT_OK(from_bytes);
  core::Tensor z_file, z_bytes;
  ASSERT_OK(model->pipeline->Encode(*from_file, &z_file));
  ASSERT_OK(model->pipeline->Encode(*from_bytes, &z_bytes));
  ASSERT_EQ(z_file.shape(), z_bytes.shape());
  EXPECT_EQ(0, std::memcmp(z_file.data(), z_bytes.data(), z_file.numel() * sizeof(float)));
}

}  // namespace
}  // namespace invad

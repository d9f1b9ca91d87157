// The request path's preprocessing cost, for docs/benchmarks.md via bench/run_preprocess_bench.sh:
//   BM_Preprocess/size:S/pose:P   a decoded S×S RGB image of a part (a lit ring on a plain
//                                 background) → the 256×256 network input, pose normalisation off
//                                 (P = 0) or on (P = 1)
//   BM_MapToImageFrame/size:N     an N×N map of the canonical frame back into the image's frame
#include <cmath>
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "benchmark/benchmark.h"

#include "preprocess/preprocess.h"

namespace invad::bench {
namespace {

preprocess::Image PartImage(int size) {
  cv::Mat m(size, size, CV_8UC3, cv::Scalar::all(35));
  const double c = 0.5 * size + 0.03 * size, outer = 0.31 * size, inner = 0.14 * size;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double dx = x - c, dy = y - c, r = std::hypot(dx, dy);
      if (r < inner || r > outer) continue;
      const double v = 150 + 40 * std::cos(std::atan2(dy, dx) - 0.8);
      m.at<cv::Vec3b>(y, x) = cv::Vec3b::all(static_cast<uint8_t>(v));
    }
  }
  cv::Mat noise(size, size, CV_8UC3);
  cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(3));
  m += noise;
  preprocess::Image img;
  img.width = img.height = size;
  img.channels = 3;
  img.order = preprocess::ChannelOrder::kBgr;
  img.data.assign(m.data, m.data + m.total() * m.elemSize());
  return img;
}

void BM_Preprocess(benchmark::State& state) {
  const preprocess::Image img = PartImage(static_cast<int>(state.range(0)));
  preprocess::InputSpec spec;
  spec.pose = state.range(1) ? preprocess::PoseMode::kMoment : preprocess::PoseMode::kNone;
  std::vector<float> out(static_cast<size_t>(spec.channels()) * spec.width * spec.height);
  preprocess::Pose pose;
  for (auto _ : state) {
    if (!preprocess::Preprocess(img, spec, out.data(), &pose).ok()) {
      state.SkipWithError("preprocessing failed");
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
  if (state.range(1) && !pose.applied) state.SkipWithError("no part found");
}
BENCHMARK(BM_Preprocess)
    ->ArgNames({"size", "pose"})
    ->ArgsProduct({{256, 1024}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

void BM_MapToImageFrame(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  preprocess::Pose pose;
  pose.applied = true;
  pose.center_x = pose.center_y = 120.3;
  pose.angle = 0.7;
  pose.width = pose.height = 256;
  std::vector<float> map(static_cast<size_t>(n) * n, 1.0f), out(map.size());
  for (auto _ : state) {
    if (!preprocess::MapToImageFrame(pose, map.data(), n, n, out.data()).ok()) {
      state.SkipWithError("MapToImageFrame failed");
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_MapToImageFrame)->ArgName("size")->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace invad::bench

BENCHMARK_MAIN();

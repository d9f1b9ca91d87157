#include "core/model/calibrate.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "core/base/status_macros.h"
#include "core/scoring/scoring.h"

namespace invad::core {

absl::StatusOr<std::vector<StepsCalibration>> CalibratePipeline(Pipeline& pipeline,
                                                                const Tensor& images,
                                                                absl::Span<const int> steps,
                                                                const CalibrationOptions& options,
                                                                int batch_size) {
  if (images.rank() != 4)
    return absl::InvalidArgumentError("calibration images must be [N, ch, H, W]");
  if (batch_size < 1) return absl::InvalidArgumentError("batch_size must be >= 1");
  if (steps.empty()) return absl::InvalidArgumentError("no steps to calibrate");
  for (int k : steps) INVAD_RETURN_IF_ERROR(pipeline.Plan(k).status());
  const int64_t n = images.batch(), h = images.dim(2), w = images.dim(3);

  // Encode once; every K starts from the same z0.
  Tensor z0_all;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t b = std::min<int64_t>(batch_size, n - start);
    Tensor z0;
    INVAD_RETURN_IF_ERROR(pipeline.Encode(images.Slice(start, b), &z0));
    if (z0_all.empty()) {
      Shape all = z0.shape();
      all[0] = n;
      z0_all.Resize(all);
    }
    std::memcpy(z0_all.sample(start), z0.data(), z0.numel() * sizeof(float));
  }

  std::vector<StepsCalibration> out;
  std::vector<float> up(h * w);
  for (int k : steps) {
    std::vector<LatentScore> scores;
    std::vector<double> pixels;
    pixels.reserve(static_cast<size_t>(n) * h * w);
    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t b = std::min<int64_t>(batch_size, n - start);
      Tensor z = z0_all.Slice(start, b);
      INVAD_RETURN_IF_ERROR(pipeline.Invert(k, z));
      Tensor maps;
      for (const LatentScore& s : ScoreLatents(z, &maps)) scores.push_back(s);
      for (int64_t i = 0; i < b; ++i) {
        UpsampleBilinear(maps.sample(i), maps.dim(1), maps.dim(2), up.data(), h, w);
        pixels.insert(pixels.end(), up.begin(), up.end());
      }
    }
    auto cal = Calibrate(scores, std::move(pixels), options);
    if (!cal.ok())
      return absl::Status(cal.status().code(),
                          absl::StrCat("steps=", k, ": ", cal.status().message()));
    out.push_back({k, *cal});
  }
  return out;
}

}  // namespace invad::core

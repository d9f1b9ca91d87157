#include "core/model/calibrate.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "core/base/status_macros.h"
#include "core/scoring/scoring.h"

namespace invad::core {

namespace {

// z0 of every image, encoded batch by batch.
absl::StatusOr<Tensor> EncodeAll(Pipeline& pipeline, const Tensor& images, int batch_size) {
  const int64_t n = images.batch();
  Tensor all;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t b = std::min<int64_t>(batch_size, n - start);
    Tensor z0;
    INVAD_RETURN_IF_ERROR(pipeline.Encode(images.Slice(start, b), &z0));
    if (all.empty()) {
      Shape shape = z0.shape();
      shape[0] = n;
      all.Resize(shape);
    }
    std::memcpy(all.sample(start), z0.data(), z0.numel() * sizeof(float));
  }
  return all;
}

// Inverts every z0 with k steps; the scores, and the latent norm maps back to back.
absl::Status InvertAll(Pipeline& pipeline, const Tensor& z0_all, int k, int batch_size,
                       std::vector<LatentScore>* scores, std::vector<float>* maps, int64_t* map_h,
                       int64_t* map_w) {
  const int64_t n = z0_all.batch();
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t b = std::min<int64_t>(batch_size, n - start);
    Tensor z = z0_all.Slice(start, b);
    INVAD_RETURN_IF_ERROR(pipeline.Invert(k, z));
    Tensor m;
    for (const LatentScore& s : ScoreLatents(z, &m)) scores->push_back(s);
    maps->insert(maps->end(), m.data(), m.data() + m.numel());
    *map_h = m.dim(1);
    *map_w = m.dim(2);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<StepsCalibration>> CalibratePipeline(
    Pipeline& pipeline, const Tensor& images, absl::Span<const int> steps,
    const CalibrationOptions& options, int batch_size, const Tensor& reference,
    const std::map<int, PositionStats>& positions) {
  if (images.rank() != 4)
    return absl::InvalidArgumentError("calibration images must be [N, ch, H, W]");
  if (!reference.empty() && reference.rank() != 4)
    return absl::InvalidArgumentError("position reference images must be [M, ch, H, W]");
  if (batch_size < 1) return absl::InvalidArgumentError("batch_size must be >= 1");
  if (steps.empty()) return absl::InvalidArgumentError("no steps to calibrate");
  for (int k : steps) INVAD_RETURN_IF_ERROR(pipeline.Plan(k).status());
  const int64_t h = images.dim(2), w = images.dim(3);

  // Encode once; every K starts from the same z0.
  INVAD_ASSIGN_OR_RETURN(Tensor z0_all, EncodeAll(pipeline, images, batch_size));
  Tensor z0_reference;
  if (!reference.empty()) {
    INVAD_ASSIGN_OR_RETURN(z0_reference, EncodeAll(pipeline, reference, batch_size));
  }

  std::vector<StepsCalibration> out;
  std::vector<float> up(h * w);
  for (int k : steps) {
    auto fail = [k](const absl::Status& s) {
      return absl::Status(s.code(), absl::StrCat("steps=", k, ": ", s.message()));
    };
    CalibrationOptions o = options;
    o.position = {};
    int64_t mh = 0, mw = 0;
    if (!z0_reference.empty()) {
      std::vector<LatentScore> unused;
      std::vector<float> ref_maps;
      INVAD_RETURN_IF_ERROR(
          InvertAll(pipeline, z0_reference, k, batch_size, &unused, &ref_maps, &mh, &mw));
      auto fitted = FitPositionStats(ref_maps, z0_reference.batch(), mh, mw);
      if (!fitted.ok()) return fail(fitted.status());
      o.position = *std::move(fitted);
    } else if (auto it = positions.find(k); it != positions.end()) {
      o.position = it->second;
    }
    std::vector<LatentScore> scores;
    std::vector<float> maps;
    INVAD_RETURN_IF_ERROR(InvertAll(pipeline, z0_all, k, batch_size, &scores, &maps, &mh, &mw));
    std::vector<double> pixels;
    pixels.reserve(static_cast<size_t>(scores.size()) * h * w);
    for (size_t i = 0; i < scores.size(); ++i) {
      UpsampleBilinear(maps.data() + i * mh * mw, mh, mw, up.data(), h, w);
      pixels.insert(pixels.end(), up.begin(), up.end());
    }
    if (!o.position.empty() && (o.position.height != mh || o.position.width != mw)) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("position statistics are ", o.position.height, "×", o.position.width,
                       ", the model's latent is ", mh, "×", mw)));
    }
    auto cal = Calibrate(scores, maps, std::move(pixels), o);
    if (!cal.ok()) return fail(cal.status());
    out.push_back({k, *cal});
  }
  return out;
}

}  // namespace invad::core

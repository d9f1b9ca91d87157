// Fuzzes the server's request path up to the model: a ScoreRequest (protobuf wire bytes, as a
// client sends them) checked against a model's manifest and turned into model inputs by
// server::PrepareRequest (steps, category, calibration, threshold, map kind, image decode or raw
// pixels, region of interest, tiling, preprocessing), with and without pose normalisation, whose
// poses then bring a map back into each tile's frame. Every outcome must be a status, never a
// crash, a leak or an allocation beyond the limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "server/scoring.h"

namespace {

const invad::v1::ModelConfig& Config() {
  static const invad::v1::ModelConfig* config = [] {
    std::ifstream in(INVAD_FUZZ_MANIFEST);
    std::stringstream text;
    text << in.rdbuf();
    auto c = invad::bundle::ParseManifest(text.str());
    if (!c.ok()) std::abort();  // the example manifest must parse
    return new invad::v1::ModelConfig(*c);
  }();
  return *config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  invad::v1::ScoreRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  invad::server::ScoringLimits limits;
  limits.decode.max_pixels = 1 << 20;  // explore formats and shapes, not allocation sizes
  limits.decode.max_encoded_bytes = 1 << 20;
  invad::preprocess::InputSpec spec = invad::bundle::ToInputSpec(Config().input());
  spec.width = spec.height = 32;  // small inputs keep each execution fast
  (void)invad::server::PrepareRequest(request, Config(), spec, limits);
  spec.pose = invad::preprocess::PoseMode::kMoment;
  auto posed = invad::server::PrepareRequest(request, Config(), spec, limits);
  if (posed.ok()) {
    std::vector<float> map(4 * 4), out(map.size());
    for (size_t i = 0; i < map.size(); ++i) map[i] = static_cast<float>(i);
    for (const invad::preprocess::Pose& pose : posed->poses) {
      if (!invad::preprocess::MapToImageFrame(pose, map.data(), 4, 4, out.data()).ok())
        std::abort();
    }
  }
  return 0;
}

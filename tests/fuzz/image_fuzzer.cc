// Fuzzes image decoding and preprocessing (request bytes are untrusted input). The pixel limit is
// kept small so the fuzzer explores formats rather than allocation sizes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "preprocess/preprocess.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  invad::preprocess::DecodeLimits limits;
  limits.max_pixels = 1 << 20;
  auto img = invad::preprocess::DecodeImage(
      std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (img.ok()) invad::fuzz::PreprocessSmall(*img);
  return 0;
}

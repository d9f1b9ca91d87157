// Shared by the fuzz targets: preprocessing a decoded image to a small model input, as serving
// does.
#ifndef INVAD_TESTS_FUZZ_FUZZ_UTIL_H_
#define INVAD_TESTS_FUZZ_FUZZ_UTIL_H_

#include <vector>

#include "preprocess/preprocess.h"

namespace invad::fuzz {

// 32×32 RGB: small, so each execution stays fast while every conversion path runs.
inline void PreprocessSmall(const preprocess::Image& image) {
  preprocess::InputSpec spec;
  spec.width = spec.height = 32;
  std::vector<float> out(3 * 32 * 32);
  (void)preprocess::Preprocess(image, spec, out.data());
}

}  // namespace invad::fuzz

#endif  // INVAD_TESTS_FUZZ_FUZZ_UTIL_H_

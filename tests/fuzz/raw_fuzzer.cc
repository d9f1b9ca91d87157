// Fuzzes the raw-pixel path (camera frames sent as pixels, not files): the first 8 bytes choose
// width, height, channels, bit depth, channel order and row padding; the rest is the buffer, which
// may be shorter or longer than declared. Then preprocessing to a model input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "preprocess/preprocess.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  invad::preprocess::RawPixels raw;
  raw.width = data[0] | (data[1] & 0x03) << 8;   // 0..1023
  raw.height = data[2] | (data[3] & 0x03) << 8;  // 0..1023
  raw.channels = data[4] % 5;                    // 0..4: 1 and 3 are valid
  raw.bits = (data[5] & 1) ? 16 : 8;
  raw.order = static_cast<invad::preprocess::ChannelOrder>(data[6] % 3);
  const int bytes_per_px = raw.channels * raw.bits / 8;
  raw.row_stride = raw.width * bytes_per_px + data[7] % 7 - 3;  // tight, padded or too short
  raw.data = std::string_view(reinterpret_cast<const char*>(data + 8), size - 8);
  invad::preprocess::DecodeLimits limits;
  limits.max_pixels = 1 << 20;
  auto img = invad::preprocess::FromRawPixels(raw, limits);
  if (img.ok()) invad::fuzz::PreprocessSmall(*img);
  return 0;
}

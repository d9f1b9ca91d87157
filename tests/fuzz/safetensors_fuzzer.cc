// Fuzzes the safetensors weights parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)invad::bundle::ParseSafetensors(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

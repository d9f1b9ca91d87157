// Fuzzes bundle manifest parsing and validation (config.pbtxt from disk is untrusted input).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config =
      invad::bundle::ParseManifest(std::string_view(reinterpret_cast<const char*>(data), size));
  if (config.ok()) {
    (void)invad::bundle::ValidateManifest(*config);
    (void)invad::bundle::FindCalibration(*config, 3, "");
  }
  return 0;
}

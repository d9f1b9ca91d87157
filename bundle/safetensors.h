// File: bundle/safetensors.h
//
// Named-tensor files in the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then
// the raw little-endian data. Chosen because it cannot execute code (unlike pickles), Python writes
// it in a few lines without extra packages (tools/interop/), and it stores bf16 natively.
// Supported dtypes: F32, BF16, F16.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "core/tensor.h"

namespace invad::bundle {

// Parses a whole file's bytes. InvalidArgument, naming `what`, on any malformed or truncated part.
absl::StatusOr<core::NamedTensors> ParseSafetensors(std::string_view bytes,
                                                    const std::string& what = "safetensors");
absl::StatusOr<core::NamedTensors> ReadSafetensors(const std::string& path);

// Serialises tensors (sorted by name, contiguous data, header padded to 8 bytes).
std::string SerializeSafetensors(const core::NamedTensors& tensors);

}  // namespace invad::bundle

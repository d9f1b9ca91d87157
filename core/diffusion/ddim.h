// File: core/diffusion/ddim.h
//
// One deterministic DDIM step (eta = 0) over a batch in which every sample has its own
// coefficients, so one model call can serve samples at different inversion steps and with
// different K (step-level batching). Whole-request inversion is a loop over this step.
//
// Arithmetic is float32, with the float64 coefficients of `DdimCoefficients` cast to float32
// (method.md §4.3–4.4). One deliberate deviation: the reference recomputes ε' = (a·z − x̂0)/b in
// fp32, which equals ε̂ in exact arithmetic but loses ~4 digits to cancellation at t = 0; we use ε̂
// (docs/adr/0003-numerics.md).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "core/diffusion/schedule.h"
#include "core/tensor.h"

namespace invad::core {

// For every sample i of the batch: x̂0 = a·z − b·ε̂, out = c·x̂0 + d·ε̂.
// `z`, `eps` and `out` hold coefs.size() samples of `sample_numel` floats each; `out` may alias
// `z`. Returns InvalidArgument if b == 0 for a sample (ᾱ == 1 has no noise to invert).
absl::Status DdimStep(absl::Span<const DdimCoefficients> coefs, int64_t sample_numel,
                      const float* z, const float* eps, float* out);

// Convenience over tensors: `z` is updated in place. `eps` must have z's shape, and
// coefs.size() == z.batch().
absl::Status DdimStep(absl::Span<const DdimCoefficients> coefs, const Tensor& eps, Tensor& z);

}  // namespace invad::core

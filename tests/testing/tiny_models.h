// Small model configurations shared by tests (torch-free).
#pragma once

#include "core/runtime/native.h"

namespace invad::testing {

// A DiT small enough to run and train in milliseconds: latent 8×4×4, hidden 32, depth 2, 4 heads.
inline core::DitConfig TinyDit() {
  core::DitConfig c;
  c.latent = {8, 4, 4};
  c.hidden_size = 32;
  c.depth = 2;
  c.num_heads = 4;
  return c;
}

}  // namespace invad::testing

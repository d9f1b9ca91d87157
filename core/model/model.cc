#include "core/model/model.h"

#include "absl/strings/str_cat.h"

namespace invad::core {

absl::Status ValidateDenoiserInput(const Tensor& z, absl::Span<const int> timesteps,
                                   const LatentShape& shape, int num_timesteps) {
  if (absl::Status s =
          CheckShape(z, {-1, shape.channels, shape.height, shape.width}, "denoiser input");
      !s.ok()) {
    return s;
  }
  if (static_cast<int64_t>(timesteps.size()) != z.batch()) {
    return absl::InvalidArgumentError(
        absl::StrCat(timesteps.size(), " timesteps for a batch of ", z.batch()));
  }
  for (int t : timesteps) {
    if (t < 0 || t >= num_timesteps) {
      return absl::InvalidArgumentError(
          absl::StrCat("timestep ", t, " outside [0, ", num_timesteps, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace invad::core

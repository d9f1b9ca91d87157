#include "core/model/inversion.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "core/base/status_macros.h"
#include "core/diffusion/ddim.h"

namespace invad::core {

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(std::unique_ptr<Encoder> encoder,
                                                           std::unique_ptr<Denoiser> denoiser,
                                                           const NoiseSchedule& schedule,
                                                           const std::vector<int>& allowed_steps,
                                                           ScheduleMode mode) {
  if (encoder == nullptr || denoiser == nullptr) {
    return absl::InvalidArgumentError("pipeline needs an encoder and a denoiser");
  }
  if (!(encoder->latent_shape() == denoiser->latent_shape())) {
    const LatentShape a = encoder->latent_shape(), b = denoiser->latent_shape();
    return absl::InvalidArgumentError(absl::StrCat("encoder latent [", a.channels, ",", a.height,
                                                   ",", a.width, "] != denoiser latent [",
                                                   b.channels, ",", b.height, ",", b.width, "]"));
  }
  if (allowed_steps.empty()) return absl::InvalidArgumentError("allowed_steps is empty");
  std::unique_ptr<Pipeline> p(new Pipeline());
  for (int k : allowed_steps) {
    INVAD_ASSIGN_OR_RETURN(p->plans_[k], InversionPlan(schedule, k, mode));
  }
  p->latent_ = encoder->latent_shape();
  p->allowed_steps_ = allowed_steps;
  std::sort(p->allowed_steps_.begin(), p->allowed_steps_.end());
  p->encoder_ = std::move(encoder);
  p->denoiser_ = std::move(denoiser);
  return p;
}

absl::Status Pipeline::Encode(const Tensor& images, Tensor* z0) {
  return encoder_->Encode(images, z0);
}

absl::StatusOr<const std::vector<DdimCoefficients>*> Pipeline::Plan(int k) const {
  auto it = plans_.find(k);
  if (it == plans_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "steps=", k,
        " is not allowed by this model; allowed: ", absl::StrJoin(allowed_steps_, ", ")));
  }
  return &it->second;
}

absl::Status Pipeline::InvertStep(absl::Span<const DdimCoefficients> coefs, Tensor& z,
                                  Tensor* eps) {
  timesteps_scratch_.resize(coefs.size());
  for (size_t i = 0; i < coefs.size(); ++i) timesteps_scratch_[i] = coefs[i].timestep;
  INVAD_RETURN_IF_ERROR(denoiser_->Predict(z, timesteps_scratch_, eps));
  return DdimStep(coefs, *eps, z);
}

absl::Status Pipeline::Invert(int k, Tensor& z) {
  INVAD_ASSIGN_OR_RETURN(const std::vector<DdimCoefficients>* plan, Plan(k));
  return denoiser_->Invert(*plan, z);
}

}  // namespace invad::core

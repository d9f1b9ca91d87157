#include "core/batching/runner.h"

#include <algorithm>
#include <utility>

namespace invad::core {
namespace {

class PipelineRunner final : public BatchRunner {
 public:
  PipelineRunner(std::unique_ptr<Pipeline> p, Shape input)
      : pipeline_(std::move(p)), input_(std::move(input)) {}
  Shape input_shape() const override { return input_; }
  LatentShape latent_shape() const override { return pipeline_->latent_shape(); }
  absl::StatusOr<const std::vector<DdimCoefficients>*> Plan(int k) const override {
    return pipeline_->Plan(k);
  }
  absl::Status Encode(const Tensor& images, Tensor* z0) override {
    return pipeline_->Encode(images, z0);
  }
  absl::Status Step(absl::Span<const DdimCoefficients> coefs, Tensor& z) override {
    return pipeline_->InvertStep(coefs, z, &eps_);
  }
  bool fused_inversion() const override { return pipeline_->denoiser().device_resident(); }
  absl::Status Invert(absl::Span<const DdimCoefficients> plan, Tensor& z) override {
    return pipeline_->denoiser().Invert(plan, z);
  }

 private:
  std::unique_ptr<Pipeline> pipeline_;
  Shape input_;
  Tensor eps_;
};

}  // namespace

absl::Status BatchRunner::Invert(absl::Span<const DdimCoefficients> plan, Tensor& z) {
  std::vector<DdimCoefficients> coefs(z.batch());
  for (const DdimCoefficients& c : plan) {
    std::fill(coefs.begin(), coefs.end(), c);
    if (absl::Status s = Step(coefs, z); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::unique_ptr<BatchRunner> MakePipelineRunner(std::unique_ptr<Pipeline> pipeline,
                                                Shape input_shape) {
  return std::make_unique<PipelineRunner>(std::move(pipeline), std::move(input_shape));
}

}  // namespace invad::core

// LibTorch translation unit of core/train: the conv encoder's autoencoder objective.
#include "core/train/encoder_trainer.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"

#include "core/runtime/internal/conv_encoder.h"
#include "core/runtime/internal/torch_util.h"

namespace invad::core {

absl::Status AutoencoderTrainOptions::Validate() const {
  auto bad = [](const char* f, auto v, const char* want) {
    return absl::InvalidArgumentError(absl::StrCat("autoencoder.", f, " = ", v, ": ", want));
  };
  if (steps < 1) return bad("steps", steps, "must be >= 1");
  if (batch_size < 1) return bad("batch_size", batch_size, "must be >= 1");
  if (!(peak_lr > 0)) return bad("peak_lr", peak_lr, "must be > 0");
  if (!(min_lr >= 0 && min_lr <= peak_lr)) return bad("min_lr", min_lr, "must be in [0, peak_lr]");
  if (warmup_steps > steps) return bad("warmup_steps", warmup_steps, "must be <= steps");
  if (decoder_width < 1) return bad("decoder_width", decoder_width, "must be >= 1");
  return absl::OkStatus();
}

absl::StatusOr<AutoencoderTrainResult> TrainConvAutoencoder(
    const ConvEncoderConfig& cfg, const NamedTensors& init, const Tensor& images,
    const AutoencoderTrainOptions& o, const std::function<void(const TrainProgress&)>& progress) {
  if (absl::Status s = o.Validate(); !s.ok()) return s;
  if (absl::Status s = cfg.Validate(); !s.ok()) return s;
  if (absl::Status s = CheckShape(images, {-1, cfg.input_channels, cfg.input_size, cfg.input_size},
                                  "autoencoder images");
      !s.ok())
    return s;
  if (images.batch() < 1) return absl::InvalidArgumentError("no autoencoder training images");
  int ups = 0;
  while ((cfg.latent_size << ups) < cfg.input_size) ++ups;
  if ((cfg.latent_size << ups) != cfg.input_size) {
    return absl::InvalidArgumentError(absl::StrCat("autoencoder: input ", cfg.input_size,
                                                   " is not latent ", cfg.latent_size,
                                                   " times a power of two"));
  }
  const torch::Device cpu(torch::kCPU);
  auto bound = internal::BindConvEncoder(cfg, init, cpu);
  if (!bound.ok()) return bound.status();
  std::vector<internal::ConvStage> stages = std::move(*bound);
  DenoiserTrainOptions lr_shape;  // reuses the warm-up + cosine schedule
  lr_shape.steps = o.steps;
  lr_shape.peak_lr = o.peak_lr;
  lr_shape.min_lr = o.min_lr;
  lr_shape.warmup_steps = o.warmup_steps;

  AutoencoderTrainResult result;
  absl::Status status = internal::Guarded("training the autoencoder", [&] {
    torch::manual_seed(o.seed);  // the decoder's default initialisation
    const int64_t c = cfg.latent().channels, w = o.decoder_width;
    torch::nn::Sequential decoder;
    decoder->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(c, w, 1)));
    decoder->push_back(torch::nn::SiLU());
    for (int i = 0; i < ups; ++i) {
      decoder->push_back(torch::nn::Upsample(torch::nn::UpsampleOptions()
                                                 .scale_factor(std::vector<double>{2, 2})
                                                 .mode(torch::kNearest)));
      decoder->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(w, w, 3).padding(1)));
      decoder->push_back(torch::nn::SiLU());
    }
    decoder->push_back(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(w, cfg.input_channels, 3).padding(1)));
    std::vector<torch::Tensor> params;
    for (internal::ConvStage& s : stages) {
      for (torch::Tensor* t : {&s.w1, &s.b1, &s.w2, &s.b2}) {
        t->requires_grad_(true);
        params.push_back(*t);
      }
    }
    for (const torch::Tensor& p : decoder->parameters()) params.push_back(p);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.min_lr).weight_decay(0.0));
    const torch::Tensor data = internal::View(images);
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < o.steps; ++step) {
      const double lr = LearningRate(lr_shape, step);
      for (auto& group : opt.param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      torch::Generator gen = at::detail::createCPUGenerator(o.seed * 0x9E3779B97F4A7C15ull +
                                                            static_cast<uint64_t>(step) + 1);
      const torch::Tensor idx = torch::randint(data.size(0), {o.batch_size}, gen, torch::kInt64);
      const torch::Tensor x = data.index_select(0, idx);
      const torch::Tensor z0 = internal::ConvEncoderForward(cfg, stages, x);
      torch::Tensor loss = torch::mse_loss(decoder->forward(z0), x);
      opt.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      result.losses.push_back(loss.item<double>());
      if (progress) {
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        progress({step + 1, o.steps, result.losses.back(), lr,
                  (step + 1.0) * o.batch_size / std::max(secs, 1e-9)});
      }
    }
    for (size_t s = 0; s < stages.size(); ++s) {
      const std::string pre = absl::StrCat("stages.", s, ".");
      result.encoder_weights[pre + "conv1.weight"] = internal::FromTorch(stages[s].w1.detach());
      result.encoder_weights[pre + "conv1.bias"] = internal::FromTorch(stages[s].b1.detach());
      result.encoder_weights[pre + "conv2.weight"] = internal::FromTorch(stages[s].w2.detach());
      result.encoder_weights[pre + "conv2.bias"] = internal::FromTorch(stages[s].b2.detach());
    }
  });
  if (!status.ok()) return status;
  return result;
}

}  // namespace invad::core

// LibTorch translation unit of core/train: the denoiser training loop.
#include "core/train/denoiser_trainer.h"

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "absl/strings/str_cat.h"

#include "core/runtime/internal/dit.h"
#include "core/runtime/internal/torch_util.h"

namespace invad::core {

absl::Status DenoiserTrainOptions::Validate() const {
  auto bad = [](const char* f, auto v, const char* want) {
    return absl::InvalidArgumentError(absl::StrCat(f, " = ", v, ": ", want));
  };
  if (steps < 1) return bad("steps", steps, "must be >= 1");
  if (batch_size < 1) return bad("batch_size", batch_size, "must be >= 1");
  if (!(peak_lr > 0)) return bad("peak_lr", peak_lr, "must be > 0");
  if (!(min_lr >= 0 && min_lr <= peak_lr)) return bad("min_lr", min_lr, "must be in [0, peak_lr]");
  if (warmup() > steps) return bad("warmup_steps", warmup_steps, "must be <= steps");
  if (!(weight_decay >= 0)) return bad("weight_decay", weight_decay, "must be >= 0");
  if (!(ema_max_decay >= 0 && ema_max_decay < 1))
    return bad("ema_max_decay", ema_max_decay, "must be in [0, 1)");
  return absl::OkStatus();
}

double LearningRate(const DenoiserTrainOptions& o, int step) {
  const int w = o.warmup();
  if (step < w) return o.min_lr + (o.peak_lr - o.min_lr) * step / w;
  const int rest = o.steps - w;
  if (rest <= 0) return o.peak_lr;
  return o.min_lr + (o.peak_lr - o.min_lr) * 0.5 * (1 + std::cos(M_PI * (step - w) / rest));
}

double EmaDecay(double max_decay, int64_t updates) {
  return std::min(max_decay,
                  (1.0 + static_cast<double>(updates)) / (10.0 + static_cast<double>(updates)));
}

absl::StatusOr<DenoiserTrainResult> TrainDenoiser(
    const DitConfig& config, const NamedTensors& init, const Tensor& latents,
    const NoiseSchedule& schedule, const DenoiserTrainOptions& o,
    const std::function<void(const TrainProgress&)>& progress, const DenoiserTrainState* resume,
    const DenoiserCheckpointing& checkpointing) {
  if (absl::Status s = o.Validate(); !s.ok()) return s;
  const LatentShape& l = config.latent;
  if (absl::Status s = CheckShape(latents, {-1, l.channels, l.height, l.width}, "training latents");
      !s.ok())
    return s;
  if (latents.batch() < 1) return absl::InvalidArgumentError("no training latents");
  const torch::Device cpu(torch::kCPU);
  auto bound = internal::BindDit(config, init, cpu, Precision::kFp32);
  if (!bound.ok()) return bound.status();
  internal::DitModel model = std::move(*bound);

  if (resume != nullptr && resume->step > o.steps) {
    return absl::InvalidArgumentError(absl::StrCat("the checkpoint is at step ", resume->step,
                                                   ", beyond the run's ", o.steps, " steps"));
  }
  DenoiserTrainResult result;
  absl::Status interrupted;
  absl::Status status = internal::Guarded("training the denoiser", [&] {
    std::vector<internal::DitParameter> named = model.Parameters();
    std::vector<torch::Tensor> params, ema, m, v;
    for (const internal::DitParameter& p : named) {
      p.tensor->requires_grad_(true);
      params.push_back(*p.tensor);
      ema.push_back(p.tensor->detach().clone());
      m.push_back(torch::zeros_like(p.tensor->detach()));
      v.push_back(torch::zeros_like(p.tensor->detach()));
    }
    int first = 0;
    if (resume != nullptr) {
      auto load = [&](const NamedTensors& from, const std::string& name, torch::Tensor& into,
                      const char* what) {
        auto it = from.find(name);
        if (it == from.end())
          throw std::runtime_error(absl::StrCat("checkpoint lacks ", what, " of '", name, "'"));
        torch::Tensor t = internal::ToTorch(it->second, cpu).value();
        if (t.sizes() != into.sizes())
          throw std::runtime_error(absl::StrCat("checkpoint ", what, " of '", name, "' has shape ",
                                                ShapeToString(it->second.shape)));
        torch::NoGradGuard no_grad;
        into.copy_(t);
      };
      for (size_t i = 0; i < named.size(); ++i) {
        load(resume->weights, named[i].name, params[i], "weights");
        load(resume->ema_weights, named[i].name, ema[i], "EMA weights");
        load(resume->adam_m, named[i].name, m[i], "AdamW first moment");
        load(resume->adam_v, named[i].name, v[i], "AdamW second moment");
      }
      first = resume->step;
      result.losses = resume->losses;
      result.losses.resize(first);
    }
    const torch::Tensor data = internal::View(latents).clone();
    std::vector<float> sa(schedule.num_timesteps()), sb(schedule.num_timesteps());
    for (int t = 0; t < schedule.num_timesteps(); ++t) {
      sa[t] = static_cast<float>(std::sqrt(schedule.alpha_bar(t)));
      sb[t] = static_cast<float>(std::sqrt(1.0 - schedule.alpha_bar(t)));
    }
    const torch::Tensor sqrt_ab = torch::tensor(sa), sqrt_1m_ab = torch::tensor(sb);
    auto snapshot = [&](int step) {
      DenoiserTrainState st;
      st.step = step;
      for (size_t i = 0; i < named.size(); ++i) {
        st.weights[named[i].name] = internal::FromTorch(params[i].detach());
        st.ema_weights[named[i].name] = internal::FromTorch(ema[i]);
        st.adam_m[named[i].name] = internal::FromTorch(m[i]);
        st.adam_v[named[i].name] = internal::FromTorch(v[i]);
      }
      st.losses = result.losses;
      return st;
    };
    const auto start = std::chrono::steady_clock::now();
    constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
    result.losses.reserve(o.steps);
    for (int step = first; step < o.steps; ++step) {
      const double lr = LearningRate(o, step);
      // The draws of step k depend on (seed, k) only: resuming needs no generator state.
      torch::Generator gen = at::detail::createCPUGenerator(o.seed * 0x9E3779B97F4A7C15ull +
                                                            static_cast<uint64_t>(step) + 1);
      const torch::Tensor idx = torch::randint(data.size(0), {o.batch_size}, gen, torch::kInt64);
      const torch::Tensor z0 = data.index_select(0, idx);
      const torch::Tensor t =
          torch::randint(schedule.num_timesteps(), {o.batch_size}, gen, torch::kInt64);
      const torch::Tensor eps = torch::randn(z0.sizes(), gen);
      const torch::Tensor xt = sqrt_ab.index_select(0, t).view({-1, 1, 1, 1}) * z0 +
                               sqrt_1m_ab.index_select(0, t).view({-1, 1, 1, 1}) * eps;
      for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
      torch::Tensor loss = torch::mse_loss(model.Forward(xt, t), eps);
      loss.backward();
      if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, o.grad_clip);
      {
        torch::NoGradGuard no_grad;
        const double n = step + 1.0;
        const double c1 = 1.0 - std::pow(kBeta1, n), c2 = 1.0 - std::pow(kBeta2, n);
        for (size_t i = 0; i < params.size(); ++i) {
          const torch::Tensor& g = params[i].grad();
          if (!g.defined()) continue;
          if (o.weight_decay > 0) params[i].mul_(1.0 - lr * o.weight_decay);
          m[i].mul_(kBeta1).add_(g, 1.0 - kBeta1);
          v[i].mul_(kBeta2).addcmul_(g, g, 1.0 - kBeta2);
          const torch::Tensor denom = (v[i] / c2).sqrt_().add_(kEps);
          params[i].addcdiv_(m[i], denom, -lr / c1);
        }
        const double d = EmaDecay(o.ema_max_decay, step);
        for (size_t i = 0; i < params.size(); ++i) ema[i].mul_(d).add_(params[i].detach(), 1.0 - d);
      }
      result.losses.push_back(loss.item<double>());
      if (progress) {
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        progress({step + 1, o.steps, result.losses.back(), lr,
                  (step + 1.0 - first) * o.batch_size / std::max(secs, 1e-9)});
      }
      const bool stop = checkpointing.stop_after > 0 && step + 1 == checkpointing.stop_after;
      if (checkpointing.save && step + 1 < o.steps &&
          (stop ||
           (checkpointing.every_steps > 0 && (step + 1) % checkpointing.every_steps == 0))) {
        interrupted = checkpointing.save(snapshot(step + 1));
        if (!interrupted.ok()) return;
      }
      if (stop && step + 1 < o.steps) {
        interrupted = absl::AbortedError(
            absl::StrCat("stopped after step ", step + 1, " of ", o.steps, "; resume to continue"));
        return;
      }
    }
    for (size_t i = 0; i < named.size(); ++i) {
      result.weights[named[i].name] = internal::FromTorch(params[i].detach());
      result.ema_weights[named[i].name] = internal::FromTorch(ema[i]);
    }
  });
  if (!status.ok()) return status;
  if (!interrupted.ok()) return interrupted;
  return result;
}

}  // namespace invad::core

// File: core/train/denoiser_trainer.h
//
// Trains the native DiT denoiser on latents of normal images (method.md §4.1, §6.1):
// t ~ U{0..T−1}, ε ~ N(0, I), x_t = √ᾱ_t·z0 + √(1−ᾱ_t)·ε, loss = mean (ε̂(x_t, t) − ε)²;
// AdamW (β 0.9/0.999, ε 1e-8, decoupled weight decay; implemented here so its state checkpoints),
// learning rate warmed up linearly from min_lr to peak_lr and then cosine-decayed back to min_lr,
// per step; global gradient-norm clipping; an EMA of the weights.
//
// Deviation from the paper (docs/training.md): the EMA decay
// warms up as min(max_decay, (1 + n)/(10 + n)) after n updates instead of a constant 0.999 from
// step 0, so short CPU runs do not ship weights still dominated by the initialisation.
//
// Torch-free header; the implementation is core/train/denoiser_trainer.cc (LibTorch).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"

#include "core/diffusion/schedule.h"
#include "core/runtime/native.h"
#include "core/tensor.h"

namespace invad::core {

struct DenoiserTrainOptions {
  // Optimiser steps. >= 1.
  int steps = 2000;
  // Latents per step, drawn uniformly with replacement. >= 1.
  int batch_size = 16;
  // Learning rate after warm-up. The paper's 5e-5 suits its 1.2 B model at batch 64; small models
  // on CPU train in few steps with ~1e-3.
  double peak_lr = 1e-3;
  // Learning rate of the first step and the cosine's floor (the paper's 1e-6).
  double min_lr = 1e-6;
  // Linear warm-up steps; -1 means 10 % of `steps` (the paper: 40 of 300 epochs).
  int warmup_steps = -1;
  // AdamW weight decay (the paper: 0).
  double weight_decay = 0.0;
  // Global L2 gradient-norm clip (the paper: 1.0); <= 0 disables.
  double grad_clip = 1.0;
  // EMA decay ceiling; the decay after n updates is min(ema_max_decay, (1 + n)/(10 + n)).
  double ema_max_decay = 0.999;
  // Seeds batch sampling, timesteps and noise. Same seed and thread count: bit-identical weights.
  uint64_t seed = 42;

  absl::Status Validate() const;  // InvalidArgument naming the field
  int warmup() const { return warmup_steps >= 0 ? warmup_steps : steps / 10; }
};

// The learning rate of step k (0-based).
double LearningRate(const DenoiserTrainOptions& o, int step);
// The EMA decay applied at the (n+1)-th update.
double EmaDecay(double max_decay, int64_t updates);

struct TrainProgress {
  int step = 0;  // completed steps
  int steps = 0;
  double loss = 0.0;  // this step's loss
  double lr = 0.0;
  double samples_per_second = 0.0;
};

struct DenoiserTrainResult {
  NamedTensors weights;        // the last step's weights
  NamedTensors ema_weights;    // what a bundle ships
  std::vector<double> losses;  // per step
};

// Everything a run needs to continue: after `step` completed steps, the weights, their EMA and
// AdamW's first and second moments (names as the weights). The random draws of step k depend only
// on (seed, k), so a resumed run is bit-identical to an uninterrupted one with the same thread
// count.
struct DenoiserTrainState {
  int step = 0;
  NamedTensors weights, ema_weights, adam_m, adam_v;
  std::vector<double> losses;  // of steps 0 .. step−1
};

struct DenoiserCheckpointing {
  int every_steps = 0;  // 0: never
  // > 0: save after this many completed steps and stop, returning Aborted (a run split into parts,
  // e.g. across CI sessions; resume continues it).
  int stop_after = 0;
  // Called after every `every_steps`-th step and at `stop_after` (not after the last step: the
  // result has it). An error stops training and is returned unchanged.
  std::function<absl::Status(const DenoiserTrainState&)> save;
};

// `latents` [N, C, H, W] must match `config.latent`; `init` are the starting weights (e.g.
// InitDitWeights). `progress` (optional) is called after every step. With `resume`, training
// continues from that state (its names must match `init`'s, its step be <= options.steps).
absl::StatusOr<DenoiserTrainResult> TrainDenoiser(
    const DitConfig& config, const NamedTensors& init, const Tensor& latents,
    const NoiseSchedule& schedule, const DenoiserTrainOptions& options,
    const std::function<void(const TrainProgress&)>& progress = {},
    const DenoiserTrainState* resume = nullptr, const DenoiserCheckpointing& checkpointing = {});

}  // namespace invad::core

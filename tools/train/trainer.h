// File: tools/train/trainer.h
//
// invad-train as a library (the binary parses flags into TrainOptions): from folders of normal
// images to a calibrated bundle written as the next version of a model folder. docs/training.md
// describes the flow; in short:
//   1. find images (tools/common/dataset.h), hold out per category max(min_val, ⌈val_fraction·n⌉)
//      normal images for calibration only, load both splits through the one preprocessing;
//      decide on pose normalisation (--pose) and apply it to both;
//   2. the encoder: trained with its own objective (conv_ae), fixed (conv_random, filter_bank) or a
//      user's TorchScript module, frozen as given; z0 of the training images, standardised;
//   3. the denoiser: --steps, --epochs or --time_budget (timed once, converted into steps,
//   recorded);
//      checkpoints in <out>/.checkpoint, --resume continues bit-identically;
//   4. calibration of every allowed K, pooled ("") and per category; the bundle is written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace invad::tools {

// --pose auto: pose normalisation when one part is found in at least kPosePartFraction of the
// training images and the canonical pose leaves at most kPoseVarianceRatio of their per-pixel
// variance (a part in a fixture, whose pose does not vary, keeps its images as they are).
inline constexpr double kPosePartFraction = 0.9;
inline constexpr double kPoseVarianceRatio = 0.8;

struct TrainOptions {
  std::vector<std::string> data;  // --data, repeatable
  std::string out;                // model folder; the bundle becomes its next version
  std::string description;

  // Input.
  int image_size = 256;
  std::string channels = "rgb";  // rgb | gray

  // Encoder: conv_ae | conv_random | filter_bank | torchscript.
  std::string encoder = "filter_bank";
  std::string encoder_file;  // TorchScript module (encoder = torchscript)
  int latent_channels = 0;   // TorchScript encoders only: its output channels
  int latent_size = 16;      // latent height = width
  std::vector<int> conv_channels{32, 64, 128};
  std::vector<int> conv_outputs{0, 1, 2};
  std::vector<float> filter_scales{1.0f, 2.0f, 4.0f};
  // filter_bank: two fine-detail channels (discrete Laplacian of the grey image) and four
  // periodic-texture residual channels (core::FilterBankConfig::periodic): auto (on unless the
  // filter bank keeps only its residual channels, filter_residual_only; docs/accuracy.md, "Fine
  // detail", "Periodic texture"), true or false.
  std::string filter_laplacian = "auto";
  std::string filter_periodic = "auto";
  // filter_bank: only the residual channels (core::FilterBankConfig::residual_only): auto (on when
  // the lattice channels are on and the lattice's period, core::LatticePeriod, is shorter than a
  // latent cell), true or false.
  std::string filter_residual_only = "auto";
  // filter_bank: four rotational-residual channels for round parts
  // (core::FilterBankConfig::rotational): auto (on when the training images' foreground is one
  // round part, core::ForegroundRoundness >= core::kRoundPartThreshold), true or false.
  std::string filter_rotational = "auto";
  // filter_bank: four lattice-residual channels for periodic textures
  // (core::FilterBankConfig::lattice): auto (on when core::FindLattices finds a lattice in at least
  // core::kLatticeFraction of the training images), true or false.
  std::string filter_lattice = "auto";
  // filter_bank: four pixel-standardised rotational-residual channels
  // (core::FilterBankConfig::pixel_norm, per-pixel statistics fitted on the training images):
  // auto (on when the rotational channels are on and the parts are pose-normalised), true (needs
  // the rotational channels) or false.
  std::string filter_pixel_norm = "auto";
  // Pose normalisation of the input (preprocess::PoseMode), recorded in the manifest so serving
  // does the same: none, moment, or auto (moment when nearly every training image shows one part
  // on a plain background and turning the parts into the canonical pose cuts the training images'
  // per-pixel variance to at most kPoseVarianceRatio of what it was).
  std::string pose = "auto";
  int encoder_steps = 0;  // conv_ae: 0 = a quarter of the time budget, else 300
  bool normalize_latent = true;
  // Standardise per channel and latent cell instead of per channel (core::FitLatentNorm): each
  // cell against its own normal spread, for parts in a canonical pose.
  bool normalize_latent_per_location = false;

  // Denoiser (native DiT).
  int dit_hidden = 128;
  int dit_depth = 2;
  int dit_heads = 4;
  int dit_patch = 1;
  std::string precision = "auto";  // of the served denoiser; auto: the serving device's default

  // Training length: exactly one of steps, epochs, time_budget (seconds); none = 2000 steps.
  int steps = 0;
  double epochs = 0;
  double time_budget = 0;
  int batch_size = 16;
  double lr = 1e-3;
  uint64_t seed = 42;

  // Hold-out and calibration.
  double val_fraction = 0.1;
  int min_val = 20;
  std::vector<int> allowed_steps{1, 2, 3, 5, 10};
  int default_steps = 3;
  double target_fpr = 0.01;
  double pixel_quantile = 0.999;
  // The calibrated image score (core::ScoreRule): positional_max_norm (the latent norm map's peak
  // after standardising each location by the training images' maps), max_norm (the raw map's
  // peak) or diff_sq_norm (the reference's Diff and ‖z_T‖² terms). Also for --calibrate_only.
  std::string score_rule = "positional_max_norm";
  // --calibrate_only: normal images the position statistics are fitted on (e.g. the model's
  // training images); empty = keep the source bundle's.
  std::vector<std::string> position_data;
  // At most this many of those (or of the training images) per group, evenly spaced: each goes
  // through every allowed K once more at calibration.
  int max_position_images = 256;

  // Checkpoints.
  bool resume = false;
  int checkpoint_every = 200;  // denoiser steps; 0 = never
  int stop_after_steps = 0;    // save a checkpoint after this many steps and stop (Aborted)

  std::string device = "cpu";
  int threads = 0;  // 0: one per hardware thread
  bool progress = true;

  // --calibrate_only: re-calibrate `model` (a model or version folder) on `data` into the next
  // version of `out` (default: the model's own folder), reusing its weights.
  bool calibrate_only = false;
  std::string model;
};

struct TrainReport {
  std::string version_dir;
  int train_images = 0;
  int val_images = 0;
  int skipped_files = 0;
  int encoder_steps = 0;
  int denoiser_steps = 0;
  double first_loss = 0;  // mean of the first 10 % of steps
  double last_loss = 0;   // mean of the last 10 %
  double train_seconds = 0;
  double total_seconds = 0;
};

absl::StatusOr<TrainReport> RunTraining(const TrainOptions& options);

}  // namespace invad::tools

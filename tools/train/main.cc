// invad-train: from folders of normal images to a calibrated bundle (tools/train/trainer.h).
//
//   invad-train --data DIR/<category> --out MODEL_DIR [--time_budget SECONDS]
//   invad-train --data ROOT --data MORE --out MODEL_DIR --steps 3000 --encoder conv_ae
//   invad-train --calibrate_only --model MODEL_DIR --data NEW_GOOD_IMAGES
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"

#include "tools/common/flags.h"
#include "tools/train/trainer.h"

using invad::tools::TrainOptions;
static const TrainOptions kDefaults;

ABSL_FLAG(std::vector<std::string>, data, {},
          "Normal images (repeatable): a multi-category root (<root>/<category>/train/good), one "
          "category (<dir>/train/good) or a flat folder of images.");
ABSL_FLAG(std::string, out, "", "Model folder; the bundle is written as its next version.");
ABSL_FLAG(std::string, description, "", "Free text stored in the manifest.");
ABSL_FLAG(int, image_size, kDefaults.image_size, "Network input width = height, pixels.");
ABSL_FLAG(std::string, channels, kDefaults.channels, "rgb or gray.");
ABSL_FLAG(std::string, encoder, kDefaults.encoder,
          "conv_ae (trained as an autoencoder, then frozen), conv_random, filter_bank, or "
          "torchscript (--encoder_file, frozen as given).");
ABSL_FLAG(std::string, encoder_file, "",
          "TorchScript encoder module (with --encoder torchscript).");
ABSL_FLAG(int, latent_channels, 0, "Output channels of a TorchScript encoder.");
ABSL_FLAG(int, latent_size, kDefaults.latent_size, "Latent height = width.");
ABSL_FLAG(std::vector<std::string>, conv_channels, (std::vector<std::string>{"32", "64", "128"}),
          "Conv encoder stage widths.");
ABSL_FLAG(std::vector<std::string>, conv_outputs, (std::vector<std::string>{"0", "1", "2"}),
          "Conv encoder stages concatenated into z0.");
ABSL_FLAG(std::vector<std::string>, filter_scales, (std::vector<std::string>{"1", "2", "4"}),
          "Filter-bank Gaussian scales, pixels.");
ABSL_FLAG(std::string, filter_laplacian, kDefaults.filter_laplacian,
          "Filter bank: two fine-detail channels (the grey image's discrete Laplacian, mean "
          "magnitude and peak energy per cell): auto (on unless the filter bank keeps only its "
          "residual channels), true or false.");
ABSL_FLAG(std::string, filter_periodic, kDefaults.filter_periodic,
          "Filter bank: four periodic-texture channels (the grey image minus its neighbours one "
          "dominant period away, blurred; mean and peak magnitude per cell): auto (on unless the "
          "filter bank keeps only its residual channels), true or false.");
ABSL_FLAG(std::string, filter_residual_only, kDefaults.filter_residual_only,
          "Filter bank: only the residual channels (lattice, rotational, pixel-standardised, and "
          "the Laplacian and periodic ones where on), no Gaussian-derivative statistics or cell "
          "mean/SD: auto (on when the lattice channels are on and the lattice is finer than a "
          "latent cell, or the pixel-standardised channels are on), true or false.");
ABSL_FLAG(std::string, filter_rotational, kDefaults.filter_rotational,
          "Filter bank: four rotational-residual channels for round parts (the grey image minus "
          "its rotations by +-20 degrees about the part's centroid, blurred; mean and peak "
          "magnitude per cell): auto (on when the training images show one round part on a "
          "plain background), true or false.");
ABSL_FLAG(std::string, filter_pixel_norm, kDefaults.filter_pixel_norm,
          "filter_bank: four channels of the rotational residual's detectors standardised pixel by "
          "pixel against the training images (auto: on with the rotational channels and pose "
          "normalisation; true needs the rotational channels; false).");
ABSL_FLAG(std::string, filter_lattice, kDefaults.filter_lattice,
          "Filter bank: four lattice-residual channels for periodic textures (the grey image minus "
          "its neighbours on the image's own lattice, found to a fraction of a pixel; box and "
          "11-px line detectors, mean and peak magnitude per cell): auto (on when the training "
          "images show a lattice), true or false.");
ABSL_FLAG(std::string, pose, kDefaults.pose,
          "Pose normalisation of the input, recorded in the manifest (serving does the same): "
          "none; moment (turn the part about its centroid so its intensity moment points along "
          "+x, move it to the centre; anomaly maps come back in the image's frame); auto (moment "
          "when the training images show one part on a plain background and the canonical pose "
          "cuts their per-pixel variance to 0.8 or less).");
ABSL_FLAG(int, encoder_steps, 0,
          "Autoencoder steps (conv_ae); 0 = a quarter of --time_budget, else 300.");
ABSL_FLAG(bool, normalize_latent, true, "Standardise z0 per channel (fitted on training images).");
ABSL_FLAG(bool, normalize_latent_per_location, kDefaults.normalize_latent_per_location,
          "With --normalize_latent: per channel and latent cell (each cell against its own normal "
          "spread; for parts in a canonical pose), std floored at a tenth of the channel's.");
ABSL_FLAG(int, dit_hidden, kDefaults.dit_hidden, "Denoiser width.");
ABSL_FLAG(int, dit_depth, kDefaults.dit_depth, "Denoiser blocks.");
ABSL_FLAG(int, dit_heads, kDefaults.dit_heads, "Denoiser attention heads.");
ABSL_FLAG(int, dit_patch, kDefaults.dit_patch, "Denoiser patch size.");
ABSL_FLAG(std::string, precision, kDefaults.precision,
          "Served denoiser precision: fp32, bf16, fp16 (cuda only), or auto (the serving "
          "device's default: bf16 on cuda, fp32 on cpu).");
ABSL_FLAG(int, steps, 0, "Denoiser optimiser steps.");
ABSL_FLAG(double, epochs, 0, "Denoiser epochs (converted to steps).");
ABSL_FLAG(double, time_budget, 0,
          "Training seconds (encoder + denoiser), converted once into step counts after a short "
          "timing phase; recorded in the bundle. Default without --steps/--epochs: 2000 steps.");
ABSL_FLAG(int, batch_size, kDefaults.batch_size, "Latents per denoiser step.");
ABSL_FLAG(double, lr, kDefaults.lr, "Peak learning rate.");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "Seed: split, initialisation, batches, noise.");
ABSL_FLAG(double, val_fraction, kDefaults.val_fraction, "Normal images held out per category.");
ABSL_FLAG(int, min_val, kDefaults.min_val, "At least this many held out per category.");
ABSL_FLAG(std::vector<std::string>, allowed_steps,
          (std::vector<std::string>{"1", "2", "3", "5", "10"}),
          "Inversion step counts K clients may ask for; each is calibrated.");
ABSL_FLAG(int, default_steps, kDefaults.default_steps, "K when a request names none.");
ABSL_FLAG(double, target_fpr, kDefaults.target_fpr, "Normal false-positive rate of the threshold.");
ABSL_FLAG(std::string, score_rule, kDefaults.score_rule,
          "Calibrated image score: positional_max_norm (the peak of the latent norm map after "
          "standardising each location by the training images' maps, robust z against the "
          "held-out normal images), max_norm (the raw map's peak, robust z) or diff_sq_norm (the "
          "reference's Diff + ||z_T||^2 terms).");
ABSL_FLAG(std::vector<std::string>, position_data, {},
          "With --calibrate_only: normal image folders (as --data) to fit positional_max_norm's "
          "per-location statistics on, e.g. the model's training images; default: keep the "
          "model's own.");
ABSL_FLAG(int, max_position_images, kDefaults.max_position_images,
          "positional_max_norm's per-location statistics use at most this many normal images per "
          "category (evenly spaced): the training images, or --position_data's.");
ABSL_FLAG(double, pixel_quantile, kDefaults.pixel_quantile,
          "Quantile of held-out map values used as the pixel threshold.");
ABSL_FLAG(bool, resume, false, "Continue the run checkpointed in MODEL_DIR/.checkpoint.");
ABSL_FLAG(int, checkpoint_every, kDefaults.checkpoint_every, "Denoiser steps between checkpoints.");
ABSL_FLAG(int, stop_after_steps, 0,
          "Checkpoint after this many denoiser steps and exit (status 3); --resume continues.");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda[:N].");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads (0: one per hardware thread).");
ABSL_FLAG(bool, progress, true, "Progress bars on stderr.");
ABSL_FLAG(bool, calibrate_only, false,
          "Re-calibrate --model on --data (new normal images) into a new version, no training.");
ABSL_FLAG(std::string, model, "", "With --calibrate_only: a model folder or version folder.");

namespace {

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "invad-train: %s\n", v.status().ToString().c_str());
    std::exit(2);
  }
  return *std::move(v);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains and calibrates an InvAD model from normal images.\n"
      "Usage: invad-train --data DIR [--data DIR2 ...] --out MODEL_DIR [--time_budget SECONDS]\n"
      "       invad-train --calibrate_only --model MODEL_DIR --data NEW_GOOD_IMAGES");
  std::vector<std::string> data = invad::tools::RepeatedFlag(argc, argv, "data");
  absl::ParseCommandLine(argc, argv);
  TrainOptions o;
  o.data = data;
  o.out = absl::GetFlag(FLAGS_out);
  o.description = absl::GetFlag(FLAGS_description);
  o.image_size = absl::GetFlag(FLAGS_image_size);
  o.channels = absl::GetFlag(FLAGS_channels);
  o.encoder = absl::GetFlag(FLAGS_encoder);
  o.encoder_file = absl::GetFlag(FLAGS_encoder_file);
  o.latent_channels = absl::GetFlag(FLAGS_latent_channels);
  o.latent_size = absl::GetFlag(FLAGS_latent_size);
  o.conv_channels =
      OrDie(invad::tools::ParseIntList(absl::GetFlag(FLAGS_conv_channels), "conv_channels"));
  o.conv_outputs =
      OrDie(invad::tools::ParseIntList(absl::GetFlag(FLAGS_conv_outputs), "conv_outputs"));
  o.filter_scales =
      OrDie(invad::tools::ParseFloatList(absl::GetFlag(FLAGS_filter_scales), "filter_scales"));
  o.filter_laplacian = absl::GetFlag(FLAGS_filter_laplacian);
  o.filter_periodic = absl::GetFlag(FLAGS_filter_periodic);
  o.filter_residual_only = absl::GetFlag(FLAGS_filter_residual_only);
  o.filter_rotational = absl::GetFlag(FLAGS_filter_rotational);
  o.filter_lattice = absl::GetFlag(FLAGS_filter_lattice);
  o.filter_pixel_norm = absl::GetFlag(FLAGS_filter_pixel_norm);
  o.pose = absl::GetFlag(FLAGS_pose);
  o.encoder_steps = absl::GetFlag(FLAGS_encoder_steps);
  o.normalize_latent = absl::GetFlag(FLAGS_normalize_latent);
  o.normalize_latent_per_location = absl::GetFlag(FLAGS_normalize_latent_per_location);
  o.dit_hidden = absl::GetFlag(FLAGS_dit_hidden);
  o.dit_depth = absl::GetFlag(FLAGS_dit_depth);
  o.dit_heads = absl::GetFlag(FLAGS_dit_heads);
  o.dit_patch = absl::GetFlag(FLAGS_dit_patch);
  o.precision = absl::GetFlag(FLAGS_precision);
  o.steps = absl::GetFlag(FLAGS_steps);
  o.epochs = absl::GetFlag(FLAGS_epochs);
  o.time_budget = absl::GetFlag(FLAGS_time_budget);
  o.batch_size = absl::GetFlag(FLAGS_batch_size);
  o.lr = absl::GetFlag(FLAGS_lr);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.val_fraction = absl::GetFlag(FLAGS_val_fraction);
  o.min_val = absl::GetFlag(FLAGS_min_val);
  o.allowed_steps =
      OrDie(invad::tools::ParseIntList(absl::GetFlag(FLAGS_allowed_steps), "allowed_steps"));
  o.default_steps = absl::GetFlag(FLAGS_default_steps);
  o.target_fpr = absl::GetFlag(FLAGS_target_fpr);
  o.pixel_quantile = absl::GetFlag(FLAGS_pixel_quantile);
  o.score_rule = absl::GetFlag(FLAGS_score_rule);
  o.position_data = absl::GetFlag(FLAGS_position_data);
  o.max_position_images = absl::GetFlag(FLAGS_max_position_images);
  o.resume = absl::GetFlag(FLAGS_resume);
  o.checkpoint_every = absl::GetFlag(FLAGS_checkpoint_every);
  o.stop_after_steps = absl::GetFlag(FLAGS_stop_after_steps);
  o.device = absl::GetFlag(FLAGS_device);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.progress = absl::GetFlag(FLAGS_progress);
  o.calibrate_only = absl::GetFlag(FLAGS_calibrate_only);
  o.model = absl::GetFlag(FLAGS_model);
  auto report = invad::tools::RunTraining(o);
  if (!report.ok()) {
    std::fprintf(stderr, "invad-train: %s\n", report.status().ToString().c_str());
    return report.status().code() == absl::StatusCode::kAborted ? 3 : 2;
  }
  std::printf(
      "invad-train: wrote %s (%d train / %d held-out images, %d skipped; encoder %d steps, "
      "denoiser %d steps, loss %.4f -> %.4f; training %.1f s, total %.1f s)\n",
      report->version_dir.c_str(), report->train_images, report->val_images, report->skipped_files,
      report->encoder_steps, report->denoiser_steps, report->first_loss, report->last_loss,
      report->train_seconds, report->total_seconds);
  return 0;
}

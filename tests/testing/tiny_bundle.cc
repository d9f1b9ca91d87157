#include "tests/testing/tiny_bundle.h"

#include "bundle/bundle.h"
#include "bundle/safetensors.h"
#include "core/runtime/native.h"

namespace invad::testing {

namespace {
core::ConvEncoderConfig EncoderConfig(const TinyBundleOptions& o) {
  core::ConvEncoderConfig c;
  c.input_size = o.image_size;
  c.stage_channels = {4, 8, 8};
  c.output_stages = {1, 2};
  c.latent_size = o.latent_size;
  return c;
}
core::DitConfig DitConfig(const TinyBundleOptions& o) {
  core::DitConfig d;
  d.latent = EncoderConfig(o).latent();
  d.hidden_size = o.hidden_size;
  d.depth = o.depth;
  d.num_heads = o.num_heads;
  return d;
}
}  // namespace

v1::ModelConfig TinyManifest(const TinyBundleOptions& o) {
  v1::ModelConfig c;
  c.set_format_version(1);
  c.set_name("tiny");
  auto* in = c.mutable_input();
  in->set_width(o.image_size);
  in->set_height(o.image_size);
  in->set_channel_order(v1::RGB);
  in->set_resize(v1::RESIZE_ANTIALIAS_BILINEAR);
  for (float m : {0.485f, 0.456f, 0.406f}) in->add_mean(m);
  for (float s : {0.229f, 0.224f, 0.225f}) in->add_std(s);
  const core::LatentShape l = EncoderConfig(o).latent();
  c.mutable_latent()->set_channels(static_cast<int>(l.channels));
  c.mutable_latent()->set_height(static_cast<int>(l.height));
  c.mutable_latent()->set_width(static_cast<int>(l.width));
  for (int k : o.allowed_steps) c.mutable_diffusion()->add_allowed_steps(k);
  c.mutable_diffusion()->set_default_steps(o.default_steps);
  auto* enc = c.mutable_encoder()->mutable_conv();
  enc->set_weights_file("encoder.safetensors");
  for (int ch : EncoderConfig(o).stage_channels) enc->add_stage_channels(ch);
  for (int s : EncoderConfig(o).output_stages) enc->add_output_stages(s);
  auto* dit = c.mutable_denoiser()->mutable_dit();
  dit->set_weights_file("denoiser.safetensors");
  dit->set_patch_size(1);
  dit->set_hidden_size(o.hidden_size);
  dit->set_depth(o.depth);
  dit->set_num_heads(o.num_heads);
  c.set_precision(v1::FP32);
  for (int k : o.allowed_steps) {
    core::Calibration cal;
    cal.diff = {1.0, 0.5};
    cal.sq_norm = {100.0, 10.0};
    cal.max_norm = {1.0, 0.25};
    cal.rule = o.score_rule;
    if (o.score_rule == core::ScoreRule::kPositionalMaxNorm) {
      // Location i: normal mean 0.1·i, scale 0.5 + 0.05·i, so the standardised peak can sit
      // elsewhere than the raw one.
      const int hw = o.latent_size * o.latent_size;
      cal.position.height = cal.position.width = o.latent_size;
      for (int i = 0; i < hw; ++i) {
        cal.position.center.push_back(0.1f * static_cast<float>(i));
        cal.position.scale.push_back(0.5f + 0.05f * static_cast<float>(i));
      }
      cal.positional_max = {1.0, 0.25};
    }
    cal.image_threshold = 3.0;
    cal.pixel_threshold = 2.0;
    cal.num_images = 20;
    *c.add_calibration() = bundle::FromCalibration(cal, k, "");
  }
  return c;
}

absl::StatusOr<std::string> WriteTinyBundle(const std::string& model_dir,
                                            const TinyBundleOptions& o) {
  std::vector<bundle::BundleFile> files = {
      {"encoder.safetensors",
       bundle::SerializeSafetensors(core::InitConvEncoderWeights(EncoderConfig(o), o.seed))},
      {"denoiser.safetensors", bundle::SerializeSafetensors(core::InitDitWeights(
                                   DitConfig(o), o.seed + 1, o.zero_init_output))},
  };
  return bundle::WriteNextVersion(model_dir, TinyManifest(o), files);
}

}  // namespace invad::testing

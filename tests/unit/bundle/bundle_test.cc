#include "bundle/bundle.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "bundle/files.h"
#include "bundle/safetensors.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_bundle.h"

namespace invad::bundle {
namespace {

using ::invad::testing::StatusIs;
using ::invad::testing::TinyManifest;
using ::invad::testing::WriteTinyBundle;
using ::testing::ElementsAre;
namespace fs = std::filesystem;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
constexpr auto kNotFound = absl::StatusCode::kNotFound;

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = fs::temp_directory_path() /
            ("invad_bundle_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(repo_);
    model_ = (repo_ / "tiny").string();
  }
  void TearDown() override { fs::remove_all(repo_); }

  // Rewrites the manifest after `edit`, keeping checksums valid, so only the edit is wrong.
  void EditManifest(const std::string& dir, const std::function<void(v1::ModelConfig&)>& edit) {
    auto text = ReadFile(dir + "/config.pbtxt");
    ASSERT_OK(text);
    auto c = ParseManifest(*text);
    ASSERT_OK(c);
    edit(*c);
    ASSERT_OK(WriteFile(dir + "/config.pbtxt", FormatManifest(*c)));
  }
  fs::path repo_;
  std::string model_;
};

TEST_F(BundleTest, WritesConsecutiveVersionsAndResolvesLatest) {
  auto v1 = WriteTinyBundle(model_);
  auto v2 = WriteTinyBundle(model_);
  ASSERT_OK(v1);
  ASSERT_OK(v2);
  EXPECT_THAT(*ListVersions(model_), ElementsAre(1, 2));
  EXPECT_EQ(*ResolveVersionDir(model_), *v2);
  EXPECT_EQ(*ResolveVersionDir(*v1), *v1);
  auto b = ReadBundle(*v1);
  ASSERT_OK(b);
  EXPECT_EQ(b->name, "tiny");
  EXPECT_EQ(b->version, 1);
  EXPECT_EQ(b->config.files_size(), 2);
}

TEST_F(BundleTest, LoadedModelRunsTheWholePipeline) {
  ASSERT_OK(WriteTinyBundle(model_));
  auto m = LoadModel(model_);
  ASSERT_OK(m);
  EXPECT_EQ(m->input.width, 32);
  core::Tensor images({2, 3, 32, 32}), z;
  ASSERT_OK(m->pipeline->Encode(images, &z));
  EXPECT_EQ(z.shape(), (core::Shape{2, 16, 4, 4}));
  ASSERT_OK(m->pipeline->Invert(3, z));
  EXPECT_THAT(m->pipeline->Invert(5, z), StatusIs(kInvalid, "allowed"));
  auto cal = FindCalibration(m->bundle.config, 3);
  ASSERT_OK(cal);
  EXPECT_DOUBLE_EQ(cal->image_threshold, 3.0);
}

TEST_F(BundleTest, MissingThingsAreNotFound) {
  EXPECT_THAT(ResolveVersionDir(model_), StatusIs(kNotFound));
  fs::create_directories(model_);
  EXPECT_THAT(ResolveVersionDir(model_), StatusIs(kNotFound, "no version"));
  auto dir = WriteTinyBundle(model_);
  ASSERT_OK(dir);
  fs::remove(*dir + "/denoiser.safetensors");
  EXPECT_THAT(ReadBundle(*dir), StatusIs(kNotFound, "denoiser.safetensors"));
  fs::remove(*dir + "/config.pbtxt");
  EXPECT_THAT(ReadBundle(*dir), StatusIs(kNotFound, "config.pbtxt"));
}

TEST_F(BundleTest, TruncatedFileIsInvalidArgument) {
  auto dir = WriteTinyBundle(model_);
  ASSERT_OK(dir);
  const std::string path = *dir + "/denoiser.safetensors";
  fs::resize_file(path, fs::file_size(path) / 2);
  EXPECT_THAT(ReadBundle(*dir), StatusIs(kInvalid, "truncated"));
}

TEST_F(BundleTest, CorruptedFileFailsChecksum) {
  auto dir = WriteTinyBundle(model_);
  ASSERT_OK(dir);
  const std::string path = *dir + "/encoder.safetensors";
  std::string data = *ReadFile(path);
  data[data.size() / 2] ^= 0x5a;
  ASSERT_OK(WriteFile(path, data));
  EXPECT_THAT(ReadBundle(*dir), StatusIs(kInvalid, "checksum"));
}

TEST_F(BundleTest, UnparsableManifestNamesTheLine) {
  auto dir = WriteTinyBundle(model_);
  ASSERT_OK(dir);
  ASSERT_OK(WriteFile(*dir + "/config.pbtxt", "format_version: 1\ninput { width: oops }\n"));
  EXPECT_THAT(ReadBundle(*dir), StatusIs(kInvalid, "line 2"));
}

struct FieldCase {
  const char* field;
  std::function<void(v1::ModelConfig&)> edit;
};

class ManifestFieldTest : public BundleTest, public ::testing::WithParamInterface<FieldCase> {};

TEST_P(ManifestFieldTest, InvalidFieldIsNamed) {
  auto dir = WriteTinyBundle(model_);
  ASSERT_OK(dir);
  EditManifest(*dir, GetParam().edit);
  EXPECT_THAT(ReadBundle(*dir), StatusIs(kInvalid, GetParam().field));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ManifestFieldTest,
    ::testing::Values(
        FieldCase{"format_version", [](v1::ModelConfig& c) { c.set_format_version(7); }},
        FieldCase{"input.channel_order",
                  [](v1::ModelConfig& c) { c.mutable_input()->clear_channel_order(); }},
        FieldCase{"input",
                  [](v1::ModelConfig& c) { c.mutable_input()->mutable_std()->Set(1, 0.0f); }},
        FieldCase{"latent", [](v1::ModelConfig& c) { c.mutable_latent()->set_height(0); }},
        FieldCase{"diffusion.allowed_steps",
                  [](v1::ModelConfig& c) { c.mutable_diffusion()->add_allowed_steps(51); }},
        FieldCase{"diffusion.default_steps",
                  [](v1::ModelConfig& c) { c.mutable_diffusion()->set_default_steps(10); }},
        FieldCase{"encoder.conv", [](v1::ModelConfig& c) { c.mutable_latent()->set_channels(13); }},
        FieldCase{"files[0].path",
                  [](v1::ModelConfig& c) { c.mutable_files(0)->set_path("../escape"); }},
        FieldCase{"denoiser.dit.weights_file",
                  [](v1::ModelConfig& c) {
                    c.mutable_denoiser()->mutable_dit()->set_weights_file("other.safetensors");
                  }},
        FieldCase{"calibration", [](v1::ModelConfig& c) { c.mutable_calibration()->RemoveLast(); }},
        FieldCase{"calibration[0].category",
                  [](v1::ModelConfig& c) { c.mutable_calibration(0)->set_category("screw"); }},
        FieldCase{"encoder.filter_bank.weights_file",
                  [](v1::ModelConfig& c) {
                    auto* fb = c.mutable_encoder()->mutable_filter_bank();
                    fb->add_scales(1.0f);
                    fb->set_rotational(true);
                    fb->set_pixel_norm(true);  // without its statistics
                    c.mutable_latent()->set_channels(10 + 6 + 4 + 4);
                  }},
        FieldCase{"encoder.filter_bank.pixel_norm",
                  [](v1::ModelConfig& c) {
                    auto* fb = c.mutable_encoder()->mutable_filter_bank();
                    fb->add_scales(1.0f);
                    fb->set_pixel_norm(true);  // without the rotational channels
                    fb->set_weights_file("encoder.safetensors");
                    c.mutable_latent()->set_channels(10 + 6 + 4);
                  }},
        FieldCase{"encoder.filter_bank.residual_only",
                  [](v1::ModelConfig& c) {
                    auto* fb = c.mutable_encoder()->mutable_filter_bank();
                    fb->add_scales(1.0f);
                    fb->set_laplacian(true);
                    fb->set_residual_only(true);  // without a residual channel family
                    c.mutable_latent()->set_channels(2);
                  }},
        FieldCase{"calibration[0].max_norm_scale",
                  [](v1::ModelConfig& c) {
                    c.mutable_calibration(0)->set_score_rule(v1::MAX_NORM);
                    c.mutable_calibration(0)->set_max_norm_scale(0);
                  }},
        FieldCase{"calibration[0].score_rule",
                  [](v1::ModelConfig& c) {
                    c.mutable_calibration(0)->set_score_rule(static_cast<v1::ScoreRule>(7));
                  }},
        // positional_max_norm without its statistics; statistics of another grid, of the wrong
        // count, or with a zero scale.
        FieldCase{"calibration[0].position",
                  [](v1::ModelConfig& c) {
                    c.mutable_calibration(0)->set_score_rule(v1::POSITIONAL_MAX_NORM);
                    c.mutable_calibration(0)->set_positional_max_scale(1);
                  }},
        FieldCase{"calibration[0].position",
                  [](v1::ModelConfig& c) {
                    auto* p = c.mutable_calibration(0)->mutable_position();
                    p->set_height(c.latent().height() + 1);
                    p->set_width(c.latent().width());
                  }},
        FieldCase{"calibration[0].position",
                  [](v1::ModelConfig& c) {
                    auto* p = c.mutable_calibration(0)->mutable_position();
                    p->set_height(c.latent().height());
                    p->set_width(c.latent().width());
                    p->add_center(1);
                    p->add_scale(1);
                  }},
        FieldCase{"calibration[0].position",
                  [](v1::ModelConfig& c) {
                    auto* p = c.mutable_calibration(0)->mutable_position();
                    p->set_height(c.latent().height());
                    p->set_width(c.latent().width());
                    for (int i = 0; i < c.latent().height() * c.latent().width(); ++i) {
                      p->add_center(1);
                      p->add_scale(i == 0 ? 0 : 1);
                    }
                  }}),
    [](const auto& info) {
      std::string n = info.param.field;
      for (char& ch : n) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n + "_" + std::to_string(info.index);
    });

// A manifest that agrees with itself but not with its weights: caught when the model loads.
TEST_F(BundleTest, ManifestThatDisagreesWithWeightsFailsToLoad) {
  auto dir = WriteTinyBundle(model_);
  ASSERT_OK(dir);
  EditManifest(
      *dir, [](v1::ModelConfig& c) { c.mutable_denoiser()->mutable_dit()->set_hidden_size(64); });
  EXPECT_THAT(LoadModel(*dir), StatusIs(kInvalid, "shape"));
}

TEST_F(BundleTest, CalibrationFallsBackToAllImagesAndRejectsUnknownCategory) {
  v1::ModelConfig c = TinyManifest();
  c.add_categories("screw");
  core::Calibration screw;
  screw.diff = {0, 1};
  screw.sq_norm = {0, 1};
  screw.image_threshold = 9.0;
  *c.add_calibration() = FromCalibration(screw, 3, "screw");
  EXPECT_DOUBLE_EQ(FindCalibration(c, 3, "screw")->image_threshold, 9.0);
  EXPECT_DOUBLE_EQ(FindCalibration(c, 2, "screw")->image_threshold, 3.0);  // "" entry
  c.clear_calibration();
  EXPECT_THAT(FindCalibration(c, 3, "bolt"), StatusIs(kNotFound, "bolt"));
}

TEST(CalibrationEntryTest, ScoreRuleAndItsStatisticsRoundTripAndAnOldEntryMeansDiffSqNorm) {
  core::Calibration cal;
  cal.rule = core::ScoreRule::kMaxNorm;
  cal.diff = {1, 2};
  cal.sq_norm = {3, 4};
  cal.max_norm = {5, 6};
  const v1::CalibrationEntry e = FromCalibration(cal, 3, "");
  EXPECT_EQ(e.score_rule(), v1::MAX_NORM);
  const core::Calibration back = ToCalibration(e);
  EXPECT_EQ(back.rule, core::ScoreRule::kMaxNorm);
  EXPECT_DOUBLE_EQ(back.max_norm.center, 5);
  EXPECT_DOUBLE_EQ(back.max_norm.scale, 6);
  EXPECT_DOUBLE_EQ(back.diff.scale, 2);
  v1::CalibrationEntry old = e;  // written before the rule: no rule, no max_norm statistics
  old.clear_score_rule();
  old.clear_max_norm_center();
  old.clear_max_norm_scale();
  const core::Calibration read = ToCalibration(old);
  EXPECT_EQ(read.rule, core::ScoreRule::kDiffSqNorm);
  core::LatentScore s;
  s.diff = 3;
  s.sq_norm = 7;
  s.max_norm = 100;
  EXPECT_DOUBLE_EQ(core::CalibratedScore(read, s, nullptr), 1.0 + 1.0);
  // positional_max_norm and its statistics.
  cal.rule = core::ScoreRule::kPositionalMaxNorm;
  cal.position = {.height = 1, .width = 2, .center = {1, 2}, .scale = {0.5f, 0.25f}};
  cal.positional_max = {7, 8};
  const core::Calibration pos = ToCalibration(FromCalibration(cal, 3, ""));
  EXPECT_EQ(pos.rule, core::ScoreRule::kPositionalMaxNorm);
  EXPECT_EQ(pos.position.height, 1);
  EXPECT_EQ(pos.position.width, 2);
  EXPECT_EQ(pos.position.center, cal.position.center);
  EXPECT_EQ(pos.position.scale, cal.position.scale);
  EXPECT_DOUBLE_EQ(pos.positional_max.center, 7);
  EXPECT_DOUBLE_EQ(pos.positional_max.scale, 8);
  const std::vector<float> map{2, 2};  // max((2 − 1)/0.5, (2 − 2)/0.25) = 2
  EXPECT_DOUBLE_EQ(core::CalibratedScore(pos, s, map.data()), (2.0 - 7) / 8);
}

TEST(SafetensorsTest, RoundTripsEveryDtype) {
  core::NamedTensors t;
  t["a"] = core::ToRaw(core::Tensor({2, 3}, {1, 2, 3, 4, 5, 6}));
  t["b\"q"] = {core::DType::kBFloat16, {2}, std::string("\x80\x3f\x00\x40", 4)};
  t["empty"] = {core::DType::kFloat16, {0, 4}, ""};
  auto back = ParseSafetensors(SerializeSafetensors(t));
  ASSERT_OK(back);
  ASSERT_EQ(back->size(), 3u);
  for (const auto& [name, raw] : t) {
    EXPECT_EQ(back->at(name).dtype, raw.dtype) << name;
    EXPECT_EQ(back->at(name).shape, raw.shape) << name;
    EXPECT_EQ(back->at(name).bytes, raw.bytes) << name;
  }
}

TEST(SafetensorsTest, MalformedFilesAreInvalidArgument) {
  core::NamedTensors t;
  t["w"] = core::ToRaw(core::Tensor({4}, {1, 2, 3, 4}));
  const std::string good = SerializeSafetensors(t);
  EXPECT_THAT(ParseSafetensors(""), StatusIs(kInvalid, "truncated"));
  EXPECT_THAT(ParseSafetensors(good.substr(0, good.size() - 3)),
              StatusIs(kInvalid, "data_offsets"));
  EXPECT_THAT(ParseSafetensors(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}"),
              StatusIs(kInvalid, "header length"));
  std::string garbage = good;
  garbage.replace(8, 5, "nope!");
  EXPECT_THAT(ParseSafetensors(garbage), StatusIs(kInvalid, "JSON"));
  auto with_header = [](const std::string& h) {
    std::string s(8, '\0');
    s[0] = static_cast<char>(h.size());
    return s + h + std::string(16, '\0');
  };
  EXPECT_THAT(
      ParseSafetensors(with_header(R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})")),
      StatusIs(kInvalid, "dtype"));
  EXPECT_THAT(
      ParseSafetensors(with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})")),
      StatusIs(kInvalid, "bytes for shape"));
  EXPECT_THAT(
      ParseSafetensors(with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})")),
      StatusIs(kInvalid, "shape"));
  EXPECT_THAT(ParseSafetensors(with_header(R"({"w":{"dtype":"F32","shape":[1]}})")),
              StatusIs(kInvalid, "data_offsets"));
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace invad::bundle

namespace invad::bundle {
namespace {
// The documented example manifest parses and validates (it is also the manifest fuzzer's seed).
TEST(ManifestExampleTest, DocumentedExampleIsValid) {
  const char* src = std::getenv("INVAD_SOURCE_DIR");
  auto text = ReadFile(std::string(src ? src : ".") + "/bundle/examples/config.pbtxt");
  ASSERT_OK(text);
  auto c = ParseManifest(*text);
  ASSERT_OK(c);
  EXPECT_OK(ValidateManifest(*c));
}

// The filter bank's channel count follows its spec: 10 per scale, 2 per input channel, 2 for the
// Laplacian channels; a latent that disagrees is named.
TEST(ManifestFilterBankTest, LatentChannelsFollowTheScalesAndTheLaplacian) {
  v1::ModelConfig c = TinyManifest();
  c.mutable_input()->set_channel_order(v1::RGB);
  auto* fb = c.mutable_encoder()->mutable_filter_bank();  // replaces the conv encoder
  fb->add_scales(1.0f);
  fb->add_scales(2.0f);
  fb->set_laplacian(true);
  v1::FileEntry* f = c.add_files();  // the denoiser's weights (a filter bank has none)
  f->set_path("denoiser.safetensors");
  f->set_sha256(std::string(64, '0'));
  f->set_size_bytes(1);
  c.mutable_latent()->set_channels(10 * 2 + 2 * 3 + 2);
  EXPECT_OK(ValidateManifest(c));
  fb->set_laplacian(false);
  EXPECT_THAT(ValidateManifest(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                            "gives 26 channels, latent.channels is 28"));
  c.mutable_latent()->set_channels(26);
  EXPECT_OK(ValidateManifest(c));
}

TEST(ServedPrecisionTest, AManifestThatSaysNothingGetsTheDevicesDefault) {
  EXPECT_EQ(ServedPrecision(v1::PRECISION_UNSPECIFIED, "cpu"), core::Precision::kFp32);
  EXPECT_EQ(ServedPrecision(v1::PRECISION_UNSPECIFIED, "cuda:1"), core::Precision::kBf16);
  EXPECT_EQ(ServedPrecision(v1::FP32, "cuda"), core::Precision::kFp32);
  EXPECT_EQ(ServedPrecision(v1::BF16, "cpu"), core::Precision::kBf16);
  EXPECT_EQ(ServedPrecision(v1::FP16, "cuda:0"), core::Precision::kFp16);
}

}  // namespace
}  // namespace invad::bundle

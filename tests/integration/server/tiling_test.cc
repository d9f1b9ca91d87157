// Region of interest and tiling through the real server, on a model trained at test time (filter
// bank at 64 px, 40 denoiser steps) on smooth textures, scoring a 256 px frame with a small planted
// defect. The checks hold for any weights (exact crop semantics, max over tiles, stitching); that
// a trained model finds the planted defect only with tiling is checked on a properly trained model
// in tests/integration/tools/train_eval_e2e_test.cc (slow).
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <unistd.h>

#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"

#include "invad/v1/inference.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/status_matchers.h"
#include "tools/train/trainer.h"

namespace invad::server {
namespace {

namespace fs = std::filesystem;

// Smooth grey texture: features of about `size / cells` pixels.
cv::Mat Texture(int size, int cells, int seed) {
  cv::Mat small(cells, cells, CV_32F);
  cv::RNG rng(seed);
  rng.fill(small, cv::RNG::NORMAL, 128, 20);
  cv::Mat big;
  cv::resize(small, big, cv::Size(size, size), 0, 0, cv::INTER_CUBIC);
  cv::Mat out;
  big.convertTo(out, CV_8U);
  cv::Mat rgb;
  cv::cvtColor(out, rgb, cv::COLOR_GRAY2BGR);
  return rgb;
}

std::string Png(const cv::Mat& m) {
  std::vector<uint8_t> buf;
  cv::imencode(".png", m, buf);
  return std::string(buf.begin(), buf.end());
}

class TilingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ =
        new fs::path(fs::temp_directory_path() / ("invad_tiling_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_ / "good");
    for (int i = 0; i < 48; ++i) {
      cv::imwrite((*root_ / "good" / (std::to_string(i) + ".png")).string(), Texture(64, 8, i));
    }
    tools::TrainOptions o;
    o.data = {(*root_ / "good").string()};
    o.out = (*root_ / "repo" / "tex").string();
    o.image_size = 64;
    o.latent_size = 8;
    o.dit_hidden = 32;
    o.dit_depth = 1;
    o.steps = 40;
    o.batch_size = 8;
    o.allowed_steps = {1, 3};
    o.progress = false;
    absl::StatusOr<tools::TrainReport> r = tools::RunTraining(o);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  void SetUp() override {
    ServerOptions o;
    o.grpc_address = "127.0.0.1:0";
    o.repository.root = (*root_ / "repo").string();
    server_ = std::make_unique<Server>(o);
    ASSERT_OK(server_->Start());
    ASSERT_OK(server_->LoadModels());
    stub_ = v1::AnomalyDetection::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
    // A 256 px frame of the same texture (features ~8 px) with a 10 px bright square at (200, 40).
    frame_ = Texture(256, 32, 1000);
    cv::rectangle(frame_, cv::Rect(200, 40, 10, 10), cv::Scalar::all(250), cv::FILLED);
  }
  void TearDown() override { server_->Drain(absl::ZeroDuration()); }

  v1::ScoreResponse Score(v1::ScoreRequest req) {
    req.set_model("tex");
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ScoreResponse resp;
    grpc::Status s = stub_->Score(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  static fs::path* root_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::AnomalyDetection::Stub> stub_;
  cv::Mat frame_;
};
fs::path* TilingTest::root_ = nullptr;

TEST_F(TilingTest, RegionOfInterestScoresExactlyTheCropWithBoxesInFrameCoordinates) {
  v1::ScoreRequest roi;
  roi.mutable_image()->set_encoded(Png(frame_));
  roi.mutable_region()->set_x(160);
  roi.mutable_region()->set_y(0);
  roi.mutable_region()->set_width(96);
  roi.mutable_region()->set_height(96);
  roi.set_map(v1::MAP_ORIGINAL);
  const v1::ScoreResponse a = Score(roi);

  v1::ScoreRequest crop;
  crop.mutable_image()->set_encoded(Png(frame_(cv::Rect(160, 0, 96, 96)).clone()));
  crop.set_map(v1::MAP_ORIGINAL);
  const v1::ScoreResponse b = Score(crop);

  EXPECT_DOUBLE_EQ(a.score(), b.score());
  EXPECT_EQ(a.map().width(), 96);
  EXPECT_EQ(a.map().height(), 96);
  EXPECT_THAT(a.map().values(), ::testing::Pointwise(::testing::FloatEq(), b.map().values()));
  ASSERT_EQ(a.regions_size(), b.regions_size());
  for (int i = 0; i < a.regions_size(); ++i) {
    EXPECT_EQ(a.regions(i).box().x(), b.regions(i).box().x() + 160);
    EXPECT_EQ(a.regions(i).box().y(), b.regions(i).box().y());
  }
}

TEST_F(TilingTest, TilingScoresTheMaxTileAndStitchesTileMaps) {
  v1::ScoreRequest whole;
  whole.mutable_image()->set_encoded(Png(frame_));
  whole.set_map(v1::MAP_ORIGINAL);
  const v1::ScoreResponse w = Score(whole);
  EXPECT_EQ(w.tiles(), 1);

  v1::ScoreRequest tiled = whole;
  tiled.mutable_tiling()->set_enabled(true);
  tiled.mutable_tiling()->set_tile_size(64);
  tiled.mutable_tiling()->set_overlap(16);
  const v1::ScoreResponse t = Score(tiled);
  EXPECT_EQ(t.tiles(), 25);  // origins 0, 48, 96, 144, 192 in x and y
  ASSERT_EQ(t.map().width(), 256);
  ASSERT_EQ(t.map().height(), 256);

  // The image score is the highest tile score: the same as scoring each tile as a region.
  double best = -1e300;
  for (int y : {0, 48, 96, 144, 192}) {
    for (int x : {0, 48, 96, 144, 192}) {
      v1::ScoreRequest r;
      r.mutable_image()->set_encoded(tiled.image().encoded());
      r.mutable_region()->set_x(x);
      r.mutable_region()->set_y(y);
      r.mutable_region()->set_width(64);
      r.mutable_region()->set_height(64);
      best = std::max(best, Score(r).score());
    }
  }
  EXPECT_NEAR(t.score(), best, 1e-3 * std::abs(best) + 1e-3);

  // The stitched map at the original resolution is, inside each tile's own area away from
  // overlaps, that tile's map: check the defect tile's interior against scoring it alone.
  v1::ScoreRequest tile;
  tile.mutable_image()->set_encoded(tiled.image().encoded());
  *tile.mutable_region() = [] {
    v1::Rect r;
    r.set_x(192);
    r.set_y(0);
    r.set_width(64);
    r.set_height(64);
    return r;
  }();
  tile.set_map(v1::MAP_ORIGINAL);
  const v1::ScoreResponse alone = Score(tile);
  ASSERT_EQ(alone.map().width(), 64);
  // Columns 208..255 and rows 0..31 are covered by this tile only (the next tile row starts at 48,
  // the previous column ends at 207).
  int differing = 0;
  for (int y = 0; y < 32; ++y) {
    for (int x = 208; x < 256; ++x) {
      const float stitched = t.map().values(y * 256 + x);
      const float own = alone.map().values(y * 64 + (x - 192));
      differing += std::abs(stitched - own) > 1e-3f * std::max(1.0f, std::abs(own));
    }
  }
  EXPECT_EQ(differing, 0);
  EXPECT_NE(t.score(), w.score()) << "tiling must change what the model sees";
}

TEST_F(TilingTest, BadTilingIsInvalidArgument) {
  v1::ScoreRequest r;
  r.set_model("tex");
  r.mutable_image()->set_encoded(Png(frame_));
  r.mutable_tiling()->set_enabled(true);
  r.mutable_tiling()->set_tile_size(16);
  r.mutable_tiling()->set_overlap(16);
  grpc::ClientContext ctx;
  v1::ScoreResponse resp;
  EXPECT_EQ(stub_->Score(&ctx, r, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace invad::server

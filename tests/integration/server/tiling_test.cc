// Region of interest and tiling through the real server, on a model trained at test time (filter
// bank at 64 px, 40 denoiser steps) on smooth textures, scoring a 256 px frame with a small planted
// defect. The checks hold for any weights (exact crop semantics, max over tiles, stitching); that
// a trained model finds the planted defect only with tiling is checked on a properly trained model
// in tests/integration/tools/train_eval_e2e_test.cc (slow). Also here: maps of a pose-normalising
// model come back in the scored image's frame.
#include <algorithm>
#include <cmath>
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

// A lit ring (radii 6-15 px) centred at (cx, cy) at pose angle theta, with a dark spot on it at
// angle theta + 1, on a plain background: grey, size × size, as BGR.
cv::Mat Part(int size, double cx, double cy, double theta) {
  cv::Mat m(size, size, CV_8UC1, cv::Scalar(35));
  const double sx = cx + 11 * std::cos(theta + 1), sy = cy + 11 * std::sin(theta + 1);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double dx = x - cx, dy = y - cy, r = std::hypot(dx, dy);
      if (r < 6 || r > 15) continue;
      const double v =
          std::hypot(x - sx, y - sy) < 3 ? 60 : 150 + 40 * std::cos(std::atan2(dy, dx) - theta);
      m.at<uint8_t>(y, x) = static_cast<uint8_t>(std::lround(v));
    }
  }
  cv::Mat bgr;
  cv::cvtColor(m, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

TEST(PoseTest, MapsOfAPoseNormalisingModelFollowThePart) {
  // Whatever the weights: an image and the same image turned by 90 degrees show the model the same
  // canonical input, so they score alike, and each map comes back in its own image's frame: the
  // second map is the first turned by 90 degrees, not the first (both canonical frames).
  const fs::path root = fs::temp_directory_path() / ("invad_pose_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "good");
  cv::RNG rng(7);
  for (int i = 0; i < 24; ++i) {
    cv::imwrite(
        (root / "good" / (std::to_string(i) + ".png")).string(),
        Part(64, rng.uniform(22.0, 42.0), rng.uniform(22.0, 42.0), rng.uniform(0.0, 6.283)));
  }
  tools::TrainOptions o;
  o.data = {(root / "good").string()};
  o.out = (root / "repo" / "part").string();
  o.image_size = 64;
  o.latent_size = 8;
  o.dit_hidden = 32;
  o.dit_depth = 1;
  o.steps = 20;
  o.batch_size = 4;
  o.allowed_steps = {1};
  o.default_steps = 1;
  o.pose = "moment";
  o.progress = false;
  ASSERT_OK(tools::RunTraining(o).status());
  ServerOptions so;
  so.grpc_address = "127.0.0.1:0";
  so.repository.root = (root / "repo").string();
  Server server(so);
  ASSERT_OK(server.Start());
  ASSERT_OK(server.LoadModels());
  auto stub = v1::AnomalyDetection::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server.port()), grpc::InsecureChannelCredentials()));
  auto score = [&](const cv::Mat& img, v1::MapKind kind) {
    v1::ScoreRequest req;
    req.set_model("part");
    req.mutable_image()->set_encoded(Png(img));
    req.set_map(kind);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ScoreResponse resp;
    grpc::Status s = stub->Score(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  };
  // Off-centre, so that turning the image moves the part.
  const cv::Mat a = Part(64, 24, 27, 0.5);
  cv::Mat b;
  cv::rotate(a, b, cv::ROTATE_90_CLOCKWISE);
  for (v1::MapKind kind : {v1::MAP_NETWORK, v1::MAP_ORIGINAL, v1::MAP_LATENT}) {
    const v1::ScoreResponse ra = score(a, kind), rb = score(b, kind);
    EXPECT_NEAR(ra.score(), rb.score(), 0.05 * std::abs(ra.score()) + 0.05);
    const int n = ra.map().width();
    ASSERT_EQ(ra.map().height(), n);
    ASSERT_EQ(rb.map().width(), n);
    ASSERT_EQ(rb.map().values_size(), n * n);
    const cv::Mat ma(n, n, CV_32F, const_cast<float*>(ra.map().values().data()));
    const cv::Mat mb(n, n, CV_32F, const_cast<float*>(rb.map().values().data()));
    cv::Mat turned;
    cv::rotate(ma, turned, cv::ROTATE_90_CLOCKWISE);
    const double follows = cv::norm(mb, turned, cv::NORM_L1);
    const double stays = cv::norm(mb, ma, cv::NORM_L1);
    EXPECT_LT(follows, 0.3 * stays)
        << "map " << kind << ": |b − turned a| " << follows << ", |b − a| " << stays;
  }
  server.Drain(absl::ZeroDuration());
  fs::remove_all(root);
}

}  // namespace
}  // namespace invad::server

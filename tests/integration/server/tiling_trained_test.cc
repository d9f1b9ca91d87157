// Tiling on a trained model (slow: trains for about a minute, like the issue-3 acceptance test):
// a 256 px frame made of four 128 px test images — three normal, one with an obvious defect —
// scored with 128 px tiles finds the defect in its quadrant: the best tile is that image, the
// image score is its score, and the highest-peaked region lies inside that quadrant.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"

#include "invad/v1/inference.grpc.pb.h"
#include "server/server.h"
#include "tests/integration/tools/train_eval_util.h"
#include "tests/testing/status_matchers.h"
#include "tools/train/trainer.h"

namespace invad::server {
namespace {

namespace fs = std::filesystem;

std::string Png(const cv::Mat& m) {
  std::vector<uint8_t> buf;
  cv::imencode(".png", m, buf);
  return std::string(buf.begin(), buf.end());
}

TEST(TrainedTilingTest, TilesFindTheDefectiveQuadrantOfAMosaic) {
  const fs::path data = tools::MakeData("tiling_data", "wood", 128, 60, 15, 5);
  tools::TrainOptions o;
  o.data = {data.string()};
  o.out = (tools::Fresh("tiling_repo") / "wood").string();
  o.image_size = 128;
  o.latent_size = 16;
  o.dit_hidden = 64;
  o.dit_depth = 2;
  o.steps = 600;
  o.allowed_steps = {3};
  o.progress = false;
  ASSERT_OK(tools::RunTraining(o).status());

  ServerOptions so;
  so.grpc_address = "127.0.0.1:0";
  so.repository.root = fs::path(o.out).parent_path().string();
  Server server(so);
  ASSERT_OK(server.Start());
  ASSERT_OK(server.LoadModels());
  auto stub = v1::AnomalyDetection::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server.port()), grpc::InsecureChannelCredentials()));
  auto score = [&](const std::string& png, bool tiled) {
    v1::ScoreRequest r;
    r.set_model("wood");
    r.mutable_image()->set_encoded(png);
    if (tiled) {
      r.mutable_tiling()->set_enabled(true);
      r.mutable_tiling()->set_tile_size(128);
      r.mutable_tiling()->set_overlap(0);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    v1::ScoreResponse resp;
    EXPECT_TRUE(stub->Score(&ctx, r, &resp).ok());
    return resp;
  };

  // The scene: the most clearly defective obvious test image and the three most clearly normal
  // good ones (this tests tiling, not the model's accuracy, which the e2e test bounds).
  std::vector<std::pair<double, cv::Mat>> good, bad;
  for (const auto& e : fs::recursive_directory_iterator(data / "test")) {
    if (!e.is_regular_file()) continue;
    const bool is_good = e.path().parent_path().filename() == "good";
    cv::Mat img = cv::imread(e.path().string(), cv::IMREAD_COLOR);
    const double s = score(Png(img), false).score();
    (is_good ? good : bad).emplace_back(s, img);
  }
  auto by_score = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::sort(good.begin(), good.end(), by_score);
  std::sort(bad.begin(), bad.end(), by_score);
  ASSERT_GE(good.size(), 3u);
  ASSERT_FALSE(bad.empty());
  const cv::Mat& defect = bad.back().second;
  ASSERT_GT(bad.back().first, good[2].first);

  for (int quadrant = 0; quadrant < 4; ++quadrant) {
    cv::Mat frame(256, 256, CV_8UC3);
    for (int q = 0, g = 0; q < 4; ++q) {
      const cv::Mat& img = q == quadrant ? defect : good[g++].second;
      img.copyTo(frame(cv::Rect(128 * (q % 2), 128 * (q / 2), 128, 128)));
    }
    const v1::ScoreResponse t = score(Png(frame), true);
    EXPECT_EQ(t.tiles(), 4);
    // Each tile is exactly one source image: the image score is the defective one's score.
    EXPECT_NEAR(t.score(), bad.back().first, 1e-3 * std::abs(bad.back().first) + 1e-3)
        << "quadrant " << quadrant;
    ASSERT_GT(t.regions_size(), 0) << "quadrant " << quadrant;
    const v1::Rect& box = t.regions(0).box();
    const int cx = box.x() + box.width() / 2, cy = box.y() + box.height() / 2;
    EXPECT_EQ(cx / 128 + 2 * (cy / 128), quadrant)
        << "top region at " << box.x() << "," << box.y() << " " << box.width() << "x"
        << box.height() << " for the defect in quadrant " << quadrant;
  }
  server.Drain(absl::ZeroDuration());
}

}  // namespace
}  // namespace invad::server

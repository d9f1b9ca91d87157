// `invad stream` over a video written by OpenCV's VideoWriter at test time, and over a folder of
// images, against a real server: one result per frame in order, then a summary.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server/server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_bundle.h"

namespace invad {
namespace {

namespace fs = std::filesystem;

// Runs a command; returns its exit status and stdout lines.
int RunCommand(const std::string& cmd, std::vector<std::string>* lines) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  *lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class CliStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("invad_cli_stream_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ASSERT_OK(invad::testing::WriteTinyBundle((dir_ / "repo" / "tiny").string()).status());
    server::ServerOptions o;
    o.grpc_address = "127.0.0.1:0";
    o.repository.root = (dir_ / "repo").string();
    server_ = std::make_unique<server::Server>(o);
    ASSERT_OK(server_->Start());
    ASSERT_OK(server_->LoadModels());
  }
  void TearDown() override {
    server_->Drain(absl::ZeroDuration());
    fs::remove_all(dir_);
  }
  std::string Cli(const std::string& args) {
    return absl::StrCat(INVAD_CLI, " stream --target=127.0.0.1:", server_->port(), " ", args,
                        " 2>&1");
  }
  fs::path dir_;
  std::unique_ptr<server::Server> server_;
};

TEST_F(CliStreamTest, VideoFramesComeBackInOrderWithASummary) {
  const std::string video = (dir_ / "line.avi").string();
  {
    cv::VideoWriter w(video, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, cv::Size(64, 48));
    ASSERT_TRUE(w.isOpened()) << "OpenCV cannot write MJPG video";
    for (int i = 0; i < 30; ++i) {
      cv::Mat f(48, 64, CV_8UC3, cv::Scalar(40 + i, 90, 140));
      cv::circle(f, cv::Point(2 * i, 24), 4, cv::Scalar(255, 255, 255), cv::FILLED);
      w.write(f);
    }
  }
  std::vector<std::string> lines;
  const int rc = RunCommand(
      Cli("--source=" + video + " --json --max_in_flight=4 --fail_on_anomaly=false"), &lines);
  ASSERT_EQ(rc, 0) << absl::StrJoin(lines, "\n");
  ASSERT_EQ(lines.size(), 31u) << absl::StrJoin(lines, "\n");
  for (int i = 0; i < 30; ++i) {
    EXPECT_THAT(lines[i],
                ::testing::HasSubstr(absl::StrCat("\"frame_id\":\"", i, "\",\"sequence\":", i)));
    EXPECT_THAT(lines[i], ::testing::HasSubstr("\"latency_ms\""));
  }
  EXPECT_THAT(lines[30], ::testing::HasSubstr("\"summary\":{\"frames\":30"));
  EXPECT_THAT(lines[30], ::testing::HasSubstr("\"errors\":0,\"dropped\":0"));

  // --max_frames stops early; text output ends with the summary line.
  ASSERT_EQ(
      RunCommand(Cli("--source=" + video + " --max_frames=5 --fail_on_anomaly=false"), &lines), 0);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[5], ::testing::StartsWith("summary: 5 frames"));
}

TEST_F(CliStreamTest, AFolderOfImagesAndAMissingSource) {
  fs::create_directories(dir_ / "frames");
  for (int i = 0; i < 4; ++i) {
    cv::imwrite((dir_ / "frames" / absl::StrCat("f", i, ".png")).string(),
                cv::Mat(32, 32, CV_8UC3, cv::Scalar(10 * i, 20, 30)));
  }
  std::vector<std::string> lines;
  ASSERT_EQ(RunCommand(Cli("--source=" + (dir_ / "frames").string() + " --fail_on_anomaly=false"),
                       &lines),
            0);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_THAT(lines[0], ::testing::HasSubstr("f0.png"));
  EXPECT_THAT(lines[3], ::testing::HasSubstr("f3.png"));
  EXPECT_EQ(RunCommand(Cli("--source=" + (dir_ / "nothing.avi").string()), &lines), 2);
}

}  // namespace
}  // namespace invad

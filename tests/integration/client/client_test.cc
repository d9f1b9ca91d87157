// The SDK against a real invad-server on 127.0.0.1 (issue 6): score, async, stream ordering,
// deadline, retries of UNAVAILABLE across a server restart, no retry of RESOURCE_EXHAUSTED, TLS,
// a stream that reconnects when the server drains and restarts.
#include "invad/client/client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "client/src/testing_hooks.h"
#include "core/base/mutex.h"
#include "server/server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_bundle.h"
#include "tests/testing/tls_certs.h"

namespace invad::client {
namespace {

namespace fs = std::filesystem;
using ::invad::testing::StatusIs;

std::string Png(int seed) {
  cv::Mat img(40, 48, CV_8UC3);
  cv::randu(img, cv::Scalar::all(seed % 40), cv::Scalar::all(200 + seed % 50));
  std::vector<uint8_t> buf;
  cv::imencode(".png", img, buf);
  return std::string(buf.begin(), buf.end());
}

// The value of one sample in a text exposition; 0 when absent.
double Sample(const std::string& text, const std::string& series) {
  const size_t at = text.find(series + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size() + 1));
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("invad_client_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ASSERT_OK(invad::testing::WriteTinyBundle((dir_ / "repo" / "tiny").string(), bundle_).status());
    server_options_.grpc_address = "127.0.0.1:0";
    server_options_.repository.root = (dir_ / "repo").string();
  }
  void TearDown() override {
    if (server_) server_->Drain(absl::ZeroDuration());
    server_.reset();
    fs::remove_all(dir_);
  }
  void StartServer() {
    server_ = std::make_unique<server::Server>(server_options_);
    ASSERT_OK(server_->Start());
    ASSERT_OK(server_->LoadModels());
    server_options_.grpc_address = absl::StrCat("127.0.0.1:", server_->port());  // for restarts
  }
  std::unique_ptr<Client> Connect(ClientOptions o = {}) {
    o.target = absl::StrCat("127.0.0.1:", server_->port());
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(o);
    EXPECT_OK(c.status());
    return c.ok() ? *std::move(c) : nullptr;
  }
  ScoreOptions Options() {
    ScoreOptions s;
    s.model = "tiny";
    s.deadline = absl::Seconds(60);
    return s;
  }
  StreamOptions Stream(int max_in_flight, int reconnect_attempts = 0) {
    StreamOptions so;
    so.defaults = Options();
    so.max_in_flight = max_in_flight;
    so.reconnect_attempts = reconnect_attempts;
    return so;
  }

  fs::path dir_;
  invad::testing::TinyBundleOptions bundle_;
  server::ServerOptions server_options_;
  std::unique_ptr<server::Server> server_;
};

// Under positional_max_norm the result carries the standardised peak's term, which is the score.
TEST_F(ClientTest, PositionalScoreTermsReachTheResult) {
  bundle_.score_rule = core::ScoreRule::kPositionalMaxNorm;  // version 2, served as the latest
  ASSERT_OK(invad::testing::WriteTinyBundle((dir_ / "repo" / "tiny").string(), bundle_).status());
  StartServer();
  auto client = Connect();
  absl::StatusOr<ScoreResult> r = client->Score(Image::Encoded(Png(1)), Options());
  ASSERT_OK(r.status());
  EXPECT_EQ(r->version, 2);
  EXPECT_EQ(r->score_rule, "positional_max_norm");
  EXPECT_NE(r->positional_max, 0);
  EXPECT_NEAR(r->score, r->positional_max_term, 1e-9);
  EXPECT_NEAR(r->positional_max_term, (r->positional_max - 1.0) / 0.25, 1e-9);
}

TEST_F(ClientTest, ScoreReturnsPlainResultsWithIdsAndMap) {
  StartServer();
  auto client = Connect();
  ScoreOptions s = Options();
  s.ids.camera_id = "cam-1";
  s.ids.frame_id = "17";
  s.map = MapKind::kLatent;
  absl::StatusOr<ScoreResult> r = client->Score(Image::Encoded(Png(1)), s);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->model, "tiny");
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(r->steps, 3);
  EXPECT_EQ(r->ids.camera_id, "cam-1");
  EXPECT_EQ(r->ids.frame_id, "17");
  EXPECT_EQ(r->anomalous, r->score > r->threshold);
  EXPECT_EQ(r->map.size(), 16u);
  EXPECT_EQ(r->score_rule, "diff_sq_norm");  // the tiny bundle's; the terms add up to the score
  EXPECT_NEAR(r->score, r->sq_norm_term + r->diff_term, 1e-9);
  EXPECT_NEAR(r->max_norm, *std::max_element(r->map.begin(), r->map.end()), 1e-5);
  EXPECT_EQ(r->batch_sizes.size(), 4u);
  EXPECT_GT(r->compute_time, absl::ZeroDuration());

  EXPECT_EQ(r->positional_max, 0);  // the tiny bundle has no position statistics
  EXPECT_EQ(r->positional_max_term, 0);

  // Raw pixels, and codes preserved.
  std::string pixels(32 * 32 * 3, '\x50');
  EXPECT_OK(client->Score(Image::Raw(32, 32, 3, pixels), Options()).status());
  s.model = "nope";
  EXPECT_THAT(client->Score(Image::Encoded(Png(1)), s), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client->Score(Image::Encoded("garbage"), Options()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<ModelDescription>> models = client->ListModels();
  ASSERT_OK(models.status());
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ((*models)[0].versions[0].state, "READY");
  for (const char* service : {"", "liveness"}) {
    absl::StatusOr<HealthStatus> h = client->Health(service);
    ASSERT_OK(h.status());
    EXPECT_EQ(*h, HealthStatus::kServing) << service;
  }
}

// A program may destroy its client (or exit) as soon as its last answer arrives; a gRPC thread
// may still be inside that answer's callback. `invad bench` crashed at exit that way.
TEST_F(ClientTest, DestroyingTheClientWaitsForCallbacksStillRunning) {
  StartServer();
  auto client = Connect();
  std::promise<void> answered;
  std::atomic<bool> returned{false};
  client->ScoreAsync(Image::Encoded(Png(1)), Options(), [&](absl::StatusOr<ScoreResult> r) {
    EXPECT_OK(r.status());
    answered.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // still in the callback
    returned = true;
  });
  answered.get_future().wait();
  client.reset();
  EXPECT_TRUE(returned);
}

TEST_F(ClientTest, AsyncCallsAllComplete) {
  StartServer();
  auto client = Connect();
  core::Mutex mu;
  core::CondVar cv;
  int done = 0, ok = 0;
  constexpr int kCalls = 24;
  for (int i = 0; i < kCalls; ++i) {
    client->ScoreAsync(Image::Encoded(Png(i)), Options(), [&](absl::StatusOr<ScoreResult> r) {
      core::MutexLock l(&mu);
      ++done;
      ok += r.ok();
      cv.notify_all();
    });
  }
  core::MutexLock l(&mu);
  ASSERT_TRUE(cv.wait_for(mu, std::chrono::seconds(120),
                          [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done == kCalls; }));
  EXPECT_EQ(ok, kCalls);
}

TEST_F(ClientTest, StreamKeepsOrderOver200FramesWithInBandErrors) {
  StartServer();
  auto client = Connect();
  absl::StatusOr<std::unique_ptr<StreamSession>> stream =
      client->OpenStream(Stream(/*max_in_flight=*/8));
  ASSERT_OK(stream.status());
  constexpr int kFrames = 200;
  std::thread sender([&] {
    for (int i = 0; i < kFrames; ++i) {
      Correlation ids;
      ids.frame_id = std::to_string(i);
      const Image img = i % 25 == 7 ? Image::Encoded("not an image") : Image::Encoded(Png(i));
      ASSERT_TRUE((*stream)->Send(img, ids));
    }
  });
  int n = 0;
  for (; n < kFrames; ++n) {
    std::optional<FrameResult> r = (*stream)->Next();
    ASSERT_TRUE(r.has_value()) << "frame " << n;
    EXPECT_EQ(r->sequence, static_cast<uint64_t>(n));
    EXPECT_EQ(r->frame_id, std::to_string(n));
    if (n % 25 == 7) {
      EXPECT_THAT(r->result, StatusIs(absl::StatusCode::kInvalidArgument));
    } else {
      ASSERT_OK(r->result.status()) << "frame " << n;
      EXPECT_EQ(r->result->ids.frame_id, std::to_string(n));
    }
  }
  sender.join();
  EXPECT_OK((*stream)->Finish());
  EXPECT_FALSE((*stream)->Next().has_value());
  EXPECT_EQ((*stream)->dropped(), 0);
}

TEST_F(ClientTest, AStreamReconnectsAcrossAServerRestart) {
  StartServer();
  auto client = Connect();
  StreamOptions so = Stream(/*max_in_flight=*/4, /*reconnect_attempts=*/30);
  absl::StatusOr<std::unique_ptr<StreamSession>> stream = client->OpenStream(so);
  ASSERT_OK(stream.status());
  auto send = [&](int i) {
    Correlation ids;
    ids.frame_id = std::to_string(i);
    return (*stream)->Send(Image::Encoded(Png(i)), ids);
  };
  std::vector<FrameResult> results;
  auto next = [&] {
    std::optional<FrameResult> r = (*stream)->Next();
    EXPECT_TRUE(r.has_value());
    if (r) results.push_back(*std::move(r));
  };
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(send(i));
  for (int i = 0; i < 4; ++i) next();
  // The server drains (the stream ends with UNAVAILABLE) and comes back on the same port while
  // frames keep coming: the session reopens the stream; frames it had sent into the dying one
  // fail with UNAVAILABLE, the others are answered.
  //
  // Each reopen lingers 300 ms between opening the new stream and taking the session's lock: the
  // first reopen happens while the server is down, so its stream breaks inside that window (a
  // break the session once lost, and then waited for forever).
  struct Linger {
    Linger() {
      internal::SetAfterReopenHookForTesting(
          +[] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); });
    }
    ~Linger() { internal::SetAfterReopenHookForTesting(nullptr); }
  } linger;
  server_->Drain(absl::Seconds(10));
  server_.reset();
  std::thread sender([&] {
    for (int i = 4; i < 24; ++i) EXPECT_TRUE(send(i)) << i;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  StartServer();
  for (int i = 4; i < 24; ++i) next();
  sender.join();
  // Once the new stream works, every frame is answered. (More Sends than max_in_flight before any
  // Next(): answers make room even while nobody reads them.)
  for (int i = 24; i < 30; ++i) ASSERT_TRUE(send(i));
  for (int i = 24; i < 30; ++i) next();
  EXPECT_OK((*stream)->Finish());
  ASSERT_EQ(results.size(), 30u);
  int ok = 0;
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(results[i].sequence, static_cast<uint64_t>(i));  // in order, each exactly once
    EXPECT_EQ(results[i].frame_id, std::to_string(i));
    if (results[i].result.ok()) {
      ++ok;
      EXPECT_EQ(results[i].result->ids.frame_id, std::to_string(i));
    } else {
      EXPECT_THAT(results[i].result, StatusIs(absl::StatusCode::kUnavailable)) << i;
      EXPECT_GE(i, 4);
      EXPECT_LT(i, 24);
    }
  }
  EXPECT_GE(ok, 10);
  EXPECT_GE((*stream)->reconnects(), 1);

  // Without reconnect_attempts the same drain ends the session with UNAVAILABLE.
  so.reconnect_attempts = 0;
  absl::StatusOr<std::unique_ptr<StreamSession>> fragile = client->OpenStream(so);
  ASSERT_OK(fragile.status());
  Correlation ids;
  ASSERT_TRUE((*fragile)->Send(Image::Encoded(Png(1)), ids));
  ASSERT_OK((*fragile)->Next()->result.status());
  server_->Drain(absl::Seconds(10));
  EXPECT_FALSE((*fragile)->Next().has_value());
  EXPECT_FALSE((*fragile)->Send(Image::Encoded(Png(2)), ids));
  EXPECT_THAT((*fragile)->Finish(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ((*fragile)->reconnects(), 0);
}

TEST_F(ClientTest, AnExpiredDeadlineIsDeadlineExceeded) {
  StartServer();
  auto client = Connect();
  ScoreOptions s = Options();
  s.deadline = absl::Microseconds(1);
  EXPECT_THAT(client->Score(Image::Encoded(Png(1)), s),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(ClientTest, UnavailableIsRetriedAcrossAServerRestart) {
  StartServer();
  ClientOptions o;
  o.max_attempts = 5;
  o.initial_backoff = absl::Milliseconds(200);
  o.max_backoff = absl::Seconds(2);
  auto client = Connect(o);
  ASSERT_OK(client->Score(Image::Encoded(Png(1)), Options()).status());
  // The server goes away; a call made now is retried until the restarted server answers.
  server_->Drain(absl::ZeroDuration());
  server_.reset();
  absl::StatusOr<ScoreResult> during = absl::UnknownError("not run");
  std::thread call([&] { during = client->Score(Image::Encoded(Png(2)), Options()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  StartServer();  // same port
  call.join();
  EXPECT_OK(during.status());

  // Without retries the same outage is an UNAVAILABLE error (so the retry above mattered).
  ClientOptions no_retry;
  no_retry.max_attempts = 1;
  auto fragile = Connect(no_retry);
  server_->Drain(absl::ZeroDuration());
  const int port = server_->port();
  server_.reset();
  absl::StatusOr<ScoreResult> r = fragile->Score(Image::Encoded(Png(3)), Options());
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable)) << "port " << port;
}

TEST_F(ClientTest, ResourceExhaustedIsNeverRetried) {
  // A slow model, batch 1, room for 1 queued task: a burst overflows it.
  bundle_.image_size = 128;
  bundle_.latent_size = 8;
  bundle_.hidden_size = 256;
  bundle_.depth = 4;
  fs::remove_all(dir_ / "repo");
  ASSERT_OK(invad::testing::WriteTinyBundle((dir_ / "repo" / "tiny").string(), bundle_).status());
  server_options_.repository.scheduler.max_batch_size = 1;
  server_options_.repository.scheduler.max_queue_size = 1;
  server_options_.repository.scheduler.max_queue_delay_us = 0;
  StartServer();
  ClientOptions o;
  o.max_attempts = 5;
  auto client = Connect(o);
  core::Mutex mu;
  core::CondVar cv;
  int done = 0, exhausted = 0;
  constexpr int kCalls = 32;
  for (int i = 0; i < kCalls; ++i) {
    client->ScoreAsync(Image::Encoded(Png(i)), Options(), [&](absl::StatusOr<ScoreResult> r) {
      core::MutexLock l(&mu);
      ++done;
      exhausted += absl::IsResourceExhausted(r.status());
      cv.notify_all();
    });
  }
  {
    core::MutexLock l(&mu);
    ASSERT_TRUE(cv.wait_for(mu, std::chrono::seconds(120),
                            [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done == kCalls; }));
  }
  EXPECT_GE(exhausted, 1);
  // The server saw each refused call exactly once: no retries.
  const std::string text = server_->metrics().Serialize();
  EXPECT_EQ(
      Sample(
          text,
          R"(invad_requests_total{code="RESOURCE_EXHAUSTED",method="Score",model="tiny",version="1"})"),
      exhausted);
  EXPECT_EQ(
      Sample(text, R"(invad_requests_total{code="OK",method="Score",model="tiny",version="1"})"),
      kCalls - exhausted);
}

TEST_F(ClientTest, TlsAndMutualTls) {
  const fs::path certs = dir_ / "certs";
  absl::Status made = invad::testing::MakeTestCertificates(certs);
  if (absl::IsNotFound(made)) {
    if (invad::testing::RunningInCi()) FAIL() << "openssl missing";
    GTEST_SKIP() << "openssl not installed";
  }
  ASSERT_OK(made);
  server_options_.tls_cert_file = (certs / "server.crt").string();
  server_options_.tls_key_file = (certs / "server.key").string();
  server_options_.tls_client_ca_file = (certs / "ca.crt").string();
  StartServer();
  ClientOptions o;
  // The address (no name resolution needed offline); the certificate is checked as "localhost".
  o.target = absl::StrCat("127.0.0.1:", server_->port());
  o.tls_server_name = "localhost";
  o.tls_ca_file = (certs / "ca.crt").string();
  o.tls_cert_file = (certs / "client.crt").string();
  o.tls_key_file = (certs / "client.key").string();
  o.max_attempts = 1;
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(o);
  ASSERT_OK(c.status());
  EXPECT_OK((*c)->Score(Image::Encoded(Png(1)), Options()).status());
  o.tls_cert_file.clear();
  o.tls_key_file.clear();
  c = Client::Create(o);
  ASSERT_OK(c.status());
  EXPECT_THAT((*c)->Score(Image::Encoded(Png(1)), Options()),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace invad::client

// The real invad-server (server::Server) on 127.0.0.1:0 with a tiny model, over real channels.
#include "server/server.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

#include "core/base/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "invad/v1/inference.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_bundle.h"

namespace invad::server {
namespace {

namespace fs = std::filesystem;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

std::string Png(int w, int h, int seed) {
  cv::Mat img(h, w, CV_8UC3);
  cv::randu(img, cv::Scalar::all(seed % 50), cv::Scalar::all(200 + seed % 50));
  std::vector<uint8_t> buf;
  cv::imencode(".png", img, buf);
  return std::string(buf.begin(), buf.end());
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = (fs::temp_directory_path() /
             ("invad_server_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(repo_);
    ASSERT_OK(invad::testing::WriteTinyBundle((fs::path(repo_) / "tiny").string()).status());
    options_.grpc_address = "127.0.0.1:0";
    options_.repository.root = repo_;
    options_.max_receive_message_bytes = 1 << 20;
  }
  void StartServer(bool load = true) {
    server_ = std::make_unique<Server>(options_);
    ASSERT_OK(server_->Start());
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::AnomalyDetection::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
    if (load) {
      ASSERT_OK(server_->LoadModels());
    }
  }
  v1::ScoreRequest Request(int seed = 1) {
    v1::ScoreRequest r;
    r.set_model("tiny");
    r.mutable_image()->set_encoded(Png(48, 40, seed));
    return r;
  }
  grpc::Status Score(const v1::ScoreRequest& req, v1::ScoreResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->Score(&ctx, req, resp);
  }
  HealthCheckResponse::ServingStatus Check(const std::string& service) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    grpc::Status s = health_->Check(&ctx, req, &resp);
    if (!s.ok()) return HealthCheckResponse::UNKNOWN;
    return resp.status();
  }

  void TearDown() override {
    if (server_) server_->Drain(absl::ZeroDuration());
    server_.reset();
    fs::remove_all(repo_);
  }

  std::string repo_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AnomalyDetection::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(ServerTest, ScoreAnswersACalibratedVerdictWithTimingsAndEchoesCorrelation) {
  StartServer();
  v1::ScoreRequest req = Request();
  req.mutable_correlation()->set_camera_id("cam-7");
  req.mutable_correlation()->set_frame_id("f-42");
  req.mutable_correlation()->set_trigger_count(99);
  req.set_map(v1::MAP_LATENT);
  v1::ScoreResponse resp;
  grpc::Status s = Score(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.model(), "tiny");
  EXPECT_EQ(resp.version(), 1);
  EXPECT_EQ(resp.steps(), 3);
  EXPECT_EQ(resp.correlation().camera_id(), "cam-7");
  EXPECT_EQ(resp.correlation().frame_id(), "f-42");
  EXPECT_EQ(resp.correlation().trigger_count(), 99u);
  EXPECT_TRUE(std::isfinite(resp.score()));
  EXPECT_GT(resp.sq_norm(), 0);
  EXPECT_EQ(resp.anomalous(), resp.score() > resp.threshold());
  EXPECT_EQ(resp.score_rule(), "diff_sq_norm");
  EXPECT_NEAR(resp.score(), resp.sq_norm_term() + resp.diff_term(), 1e-9);
  // The map's peak, and its term from the placeholder statistics (center 1, scale 0.25).
  ASSERT_GT(resp.map().values_size(), 0);
  const float peak = *std::max_element(resp.map().values().begin(), resp.map().values().end());
  EXPECT_NEAR(resp.max_norm(), peak, 1e-5);
  EXPECT_NEAR(resp.max_norm_term(), (resp.max_norm() - 1.0) / 0.25, 1e-9);
  ASSERT_EQ(resp.batch_sizes_size(), 4);  // encoder + 3 denoiser calls
  EXPECT_GT(resp.timings().compute_us(), 0);
  EXPECT_GE(resp.timings().total_us(), resp.timings().compute_us());
  EXPECT_EQ(resp.map().width(), 4);
  EXPECT_EQ(resp.map().height(), 4);
  EXPECT_EQ(resp.map().values_size(), 16);

  // A threshold override decides the verdict; steps override runs that K.
  req.set_threshold(-1e9);
  req.set_steps(1);
  req.set_map(v1::MAP_MASK_PNG);
  ASSERT_TRUE(Score(req, &resp).ok());
  EXPECT_TRUE(resp.anomalous());
  EXPECT_EQ(resp.steps(), 1);
  EXPECT_EQ(resp.threshold(), -1e9);
  cv::Mat mask = cv::imdecode(
      cv::Mat(1, resp.map_png().size(), CV_8U, const_cast<char*>(resp.map_png().data())),
      cv::IMREAD_UNCHANGED);
  EXPECT_EQ(mask.cols, 48);
  EXPECT_EQ(mask.rows, 40);
}

TEST_F(ServerTest, BadInputsGetTheirDocumentedCodesAndTheServerKeepsServing) {
  StartServer();
  struct Case {
    std::string name;
    std::function<void(v1::ScoreRequest&)> edit;
    grpc::StatusCode code;
  };
  auto raw = [](int w, int h, int ch, size_t bytes, v1::PixelType t = v1::UINT8) {
    return [=](v1::ScoreRequest& r) {
      v1::RawImage* raw = r.mutable_image()->mutable_raw();
      raw->set_width(w);
      raw->set_height(h);
      raw->set_channels(ch);
      raw->set_pixel_type(t);
      raw->set_data(std::string(bytes, '\x40'));
    };
  };
  const std::string png = Png(48, 40, 3);
  std::mt19937 rng(5);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  const std::vector<Case> cases = {
      {"empty image", [](auto& r) { r.mutable_image()->set_encoded(""); },
       grpc::StatusCode::INVALID_ARGUMENT},
      {"no image", [](auto& r) { r.clear_image(); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"truncated PNG",
       [&](auto& r) { r.mutable_image()->set_encoded(png.substr(0, png.size() / 2)); },
       grpc::StatusCode::INVALID_ARGUMENT},
      {"random bytes", [&](auto& r) { r.mutable_image()->set_encoded(noise); },
       grpc::StatusCode::INVALID_ARGUMENT},
      {"0x0 raw", raw(0, 0, 3, 0), grpc::StatusCode::INVALID_ARGUMENT},
      {"raw shorter than declared", raw(64, 64, 3, 64 * 64 * 3 - 1),
       grpc::StatusCode::INVALID_ARGUMENT},
      {"100000x100000 declared", raw(100000, 100000, 3, 16), grpc::StatusCode::INVALID_ARGUMENT},
      {"unsupported pixel type", raw(8, 8, 3, 192, static_cast<v1::PixelType>(7)),
       grpc::StatusCode::INVALID_ARGUMENT},
      {"2 channels", raw(8, 8, 2, 128), grpc::StatusCode::INVALID_ARGUMENT},
      {"unknown model", [](auto& r) { r.set_model("nope"); }, grpc::StatusCode::NOT_FOUND},
      {"unknown version", [](auto& r) { r.set_version(7); }, grpc::StatusCode::NOT_FOUND},
      {"unknown category", [](auto& r) { r.set_category("wood"); }, grpc::StatusCode::NOT_FOUND},
      {"steps not allowed", [](auto& r) { r.set_steps(4); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"region outside",
       [](auto& r) {
         r.mutable_region()->set_x(40);
         r.mutable_region()->set_width(20);
         r.mutable_region()->set_height(5);
       },
       grpc::StatusCode::INVALID_ARGUMENT},
      {"over the message limit",
       [](auto& r) { r.mutable_image()->set_encoded(std::string(2 << 20, 'x')); },
       grpc::StatusCode::RESOURCE_EXHAUSTED},
  };
  for (const Case& c : cases) {
    v1::ScoreRequest req = Request();
    c.edit(req);
    v1::ScoreResponse resp;
    grpc::Status s = Score(req, &resp);
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_FALSE(s.error_message().empty()) << c.name;
  }
  v1::ScoreResponse resp;
  EXPECT_TRUE(Score(Request(), &resp).ok()) << "the server must keep serving";
}

TEST_F(ServerTest, StreamAnswersInOrderWithInBandErrorsAndSurvivesBadFrames) {
  options_.service.max_stream_in_flight = 8;  // flow control engages
  StartServer();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub_->ScoreStream(&ctx);
  constexpr int kFrames = 100;
  std::thread writer([&] {
    for (int i = 0; i < kFrames; ++i) {
      v1::ScoreRequest req = Request(i);
      req.mutable_correlation()->set_frame_id(std::to_string(i));
      if (i % 10 == 3) req.mutable_image()->set_encoded("not an image");
      if (i % 10 == 7) req.set_steps(4);
      if (!stream->Write(req)) break;
    }
    stream->WritesDone();
  });
  int n = 0, errors = 0;
  v1::ScoreResponse resp;
  while (stream->Read(&resp)) {
    EXPECT_EQ(resp.sequence(), static_cast<uint64_t>(n));
    EXPECT_EQ(resp.correlation().frame_id(), std::to_string(n));
    const bool bad = n % 10 == 3 || n % 10 == 7;
    EXPECT_EQ(resp.has_error(), bad) << "frame " << n;
    if (bad) {
      ++errors;
      EXPECT_EQ(resp.error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    } else {
      EXPECT_EQ(resp.model(), "tiny") << "frame " << n;
    }
    ++n;
  }
  writer.join();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(n, kFrames);
  EXPECT_EQ(errors, 20);
}

TEST_F(ServerTest, ListAndGetModelDescribeTheServedVersion) {
  StartServer();
  grpc::ClientContext ctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(&ctx, v1::ListModelsRequest(), &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  const v1::VersionInfo& v = list.models(0).versions(0);
  EXPECT_EQ(v.state(), v1::VersionInfo::READY);
  EXPECT_EQ(v.input_width(), 32);
  EXPECT_THAT(v.allowed_steps(), ::testing::ElementsAre(1, 2, 3));
  EXPECT_EQ(v.default_steps(), 3);
  EXPECT_FALSE(v.calibration().empty());
  grpc::ClientContext ctx2;
  v1::GetModelRequest get;
  get.set_model("missing");
  v1::ModelInfo info;
  EXPECT_EQ(stub_->GetModel(&ctx2, get, &info).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, HealthIsNotServingWhileLoadingServingWhenReadyAndWatchSeesTheDrain) {
  StartServer(/*load=*/false);
  EXPECT_EQ(Check(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check("liveness"), HealthCheckResponse::SERVING);

  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  HealthCheckRequest req;
  req.set_service("");
  auto watch = health_->Watch(&watch_ctx, req);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);

  ASSERT_OK(server_->LoadModels());
  EXPECT_EQ(Check(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(v1::AnomalyDetection::service_full_name()), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check("inference.GRPCInferenceService"), HealthCheckResponse::SERVING);
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  std::thread drain([&] { server_->Drain(absl::Seconds(5)); });
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  drain.join();
}

// The value of the sample `series` (name{labels}) in a text exposition; -1 when absent.
double MetricValue(const std::string& text, const std::string& series) {
  const size_t at = text.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

TEST_F(ServerTest, ABundleThatFailsToLoadIsReportedAndTheRestServe) {
  const fs::path bad = fs::path(repo_) / "broken" / "1";
  fs::create_directories(bad);
  std::ofstream(bad / "config.pbtxt") << "this is not a manifest {";
  StartServer();
  grpc::ClientContext ctx;
  v1::GetModelRequest get;
  get.set_model("broken");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(&ctx, get, &info).ok());
  ASSERT_EQ(info.versions_size(), 1);
  EXPECT_EQ(info.versions(0).state(), v1::VersionInfo::FAILED);
  EXPECT_FALSE(info.versions(0).error().empty());
  v1::ScoreRequest req = Request();
  req.set_model("broken");
  v1::ScoreResponse resp;
  EXPECT_EQ(Score(req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Score(Request(), &resp).ok());
  EXPECT_EQ(Check(""), HealthCheckResponse::SERVING);
}

TEST_F(ServerTest, ReloadAddsNewVersionsAndModelsAndRetiresRemovedOnes) {
  StartServer();
  v1::ScoreResponse resp;
  ASSERT_TRUE(Score(Request(), &resp).ok());
  EXPECT_EQ(resp.version(), 1);

  // A new version of "tiny" and a new model "second" appear; the old version keeps serving
  // while they load, then retires (one version per model by default).
  ASSERT_OK(invad::testing::WriteTinyBundle((fs::path(repo_) / "tiny").string()).status());
  ASSERT_OK(invad::testing::WriteTinyBundle((fs::path(repo_) / "second").string()).status());
  absl::StatusOr<ReloadSummary> r = server_->Reload();
  ASSERT_OK(r.status());
  EXPECT_THAT(r->loaded, ::testing::UnorderedElementsAre("tiny/2", "second/1"));
  EXPECT_THAT(r->unloaded, ::testing::ElementsAre("tiny/1"));
  ASSERT_TRUE(Score(Request(), &resp).ok());
  EXPECT_EQ(resp.version(), 2);
  v1::ScoreRequest old = Request();
  old.set_version(1);
  EXPECT_EQ(Score(old, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ScoreRequest second = Request();
  second.set_model("second");
  EXPECT_TRUE(Score(second, &resp).ok());

  // The model folder disappears: its requests become NOT_FOUND; "" stays SERVING for the rest.
  fs::remove_all(fs::path(repo_) / "second");
  r = server_->Reload();
  ASSERT_OK(r.status());
  EXPECT_THAT(r->unloaded, ::testing::ElementsAre("second/1"));
  EXPECT_EQ(Score(second, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Check(""), HealthCheckResponse::SERVING);
  const std::string text = server_->metrics().Serialize();
  // Retired versions leave the gauges (a 0 left behind would page InvadModelNotReady forever).
  EXPECT_EQ(text.find(R"(invad_model_ready{model="tiny",version="1"})"), std::string::npos);
  EXPECT_EQ(text.find(R"(invad_model_ready{model="second")"), std::string::npos);
  EXPECT_NE(text.find(R"(invad_model_ready{model="tiny",version="2"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(invad_queue_capacity{model="tiny",version="2"})"), std::string::npos);
  EXPECT_EQ(text.find(R"(invad_queue_capacity{model="tiny",version="1"})"), std::string::npos);
}

// A model slow enough (~10 ms a task here) that a burst of requests queues up.
class LoadedServerTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    invad::testing::TinyBundleOptions o;
    o.image_size = 128;
    o.latent_size = 8;
    o.hidden_size = 256;
    o.depth = 4;
    fs::remove_all(fs::path(repo_) / "tiny");
    ASSERT_OK(invad::testing::WriteTinyBundle((fs::path(repo_) / "tiny").string(), o).status());
    options_.repository.scheduler.max_batch_size = 1;
    options_.repository.scheduler.max_queue_delay_us = 0;
  }
  // Fires `n` Score calls at once with `deadline` each; returns their codes.
  std::vector<grpc::StatusCode> Burst(int n, std::chrono::milliseconds deadline) {
    struct Call {
      grpc::ClientContext ctx;
      v1::ScoreResponse resp;
      grpc::Status status;
    };
    std::vector<std::unique_ptr<Call>> calls;
    core::Mutex mu;
    core::CondVar cv;
    int pending = n;
    const v1::ScoreRequest req = Request();
    for (int i = 0; i < n; ++i) {
      calls.push_back(std::make_unique<Call>());
      Call* c = calls.back().get();
      c->ctx.set_deadline(std::chrono::system_clock::now() + deadline);
      stub_->async()->Score(&c->ctx, &req, &c->resp, [&, c](grpc::Status s) {
        core::MutexLock l(&mu);
        c->status = std::move(s);
        if (--pending == 0) cv.notify_all();
      });
    }
    core::MutexLock l(&mu);
    cv.wait(mu, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return pending == 0; });
    std::vector<grpc::StatusCode> codes;
    for (auto& c : calls) codes.push_back(c->status.error_code());
    return codes;
  }
};

TEST_F(LoadedServerTest, AFullQueueAnswersResourceExhaustedAndAcceptedWorkCompletes) {
  options_.repository.scheduler.max_queue_size = 2;
  StartServer();
  const std::vector<grpc::StatusCode> codes = Burst(48, std::chrono::seconds(120));
  int ok = 0, full = 0;
  for (grpc::StatusCode c : codes) {
    ok += c == grpc::StatusCode::OK;
    full += c == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_GE(full, 1);
  EXPECT_GE(ok, 3);
  EXPECT_EQ(ok + full, 48) << "every call either completes or is refused at once";
  const std::string text = server_->metrics().Serialize();
  EXPECT_NE(text.find("invad_dropped_tasks_total{model=\"tiny\",reason=\"rejected_queue_full\","
                      "version=\"1\"} " +
                      std::to_string(full)),
            std::string::npos)
      << text;
}

// Under MAX_NORM the score is the map peak's term alone and the verdict follows it; the other
// terms are still reported. ListModels names the rule of every calibration.
TEST_F(ServerTest, ScoreFollowsTheBundlesScoreRule) {
  invad::testing::TinyBundleOptions o;
  o.score_rule = core::ScoreRule::kMaxNorm;
  ASSERT_OK(invad::testing::WriteTinyBundle((fs::path(repo_) / "tiny").string(), o).status());
  StartServer();  // serves version 2, the MAX_NORM one
  v1::ScoreRequest req = Request();
  req.set_map(v1::MAP_LATENT);
  v1::ScoreResponse resp;
  grpc::Status s = Score(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.version(), 2);
  EXPECT_EQ(resp.score_rule(), "max_norm");
  const float peak = *std::max_element(resp.map().values().begin(), resp.map().values().end());
  EXPECT_NEAR(resp.score(), (peak - 1.0) / 0.25, 1e-4);
  EXPECT_NEAR(resp.score(), resp.max_norm_term(), 1e-9);
  EXPECT_GT(std::fabs(resp.score() - (resp.sq_norm_term() + resp.diff_term())), 1e-3);
  EXPECT_EQ(resp.anomalous(), resp.score() > resp.threshold());
  grpc::ClientContext ctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(&ctx, v1::ListModelsRequest(), &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  for (const v1::VersionInfo& v : list.models(0).versions()) {
    for (const v1::CalibrationSummary& c : v.calibration())
      EXPECT_EQ(c.score_rule(), v.version() == 2 ? "max_norm" : "diff_sq_norm");
  }
}

// Under POSITIONAL_MAX_NORM the score is the position-standardised peak's term, computed from the
// latent map the response carries and the bundle's per-location statistics (tiny_bundle.cc).
TEST_F(ServerTest, PositionalScoreRuleStandardisesEachLocation) {
  invad::testing::TinyBundleOptions o;
  o.score_rule = core::ScoreRule::kPositionalMaxNorm;
  ASSERT_OK(invad::testing::WriteTinyBundle((fs::path(repo_) / "tiny").string(), o).status());
  StartServer();
  v1::ScoreRequest req = Request();
  req.set_map(v1::MAP_LATENT);
  v1::ScoreResponse resp;
  grpc::Status s = Score(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.score_rule(), "positional_max_norm");
  ASSERT_EQ(resp.map().values_size(), o.latent_size * o.latent_size);
  double best = -1e300;
  for (int i = 0; i < resp.map().values_size(); ++i)
    best = std::max(best, (resp.map().values(i) - 0.1 * i) / (0.5 + 0.05 * i));
  EXPECT_NEAR(resp.positional_max(), best, 1e-4);
  EXPECT_NEAR(resp.score(), (best - 1.0) / 0.25, 1e-3);
  EXPECT_NEAR(resp.score(), resp.positional_max_term(), 1e-9);
  EXPECT_GT(std::fabs(resp.score() - resp.max_norm_term()), 1e-3);
  EXPECT_EQ(resp.anomalous(), resp.score() > resp.threshold());
}

TEST_F(LoadedServerTest, ReloadingUnderLoadFailsNoInFlightRequest) {
  options_.repository.scheduler.max_queue_size = 1024;
  StartServer();
  std::vector<grpc::StatusCode> codes;
  std::thread load([&] { codes = Burst(60, std::chrono::seconds(120)); });
  // While version 1 has queued work, version 2 arrives and version 1 retires (drains).
  invad::testing::TinyBundleOptions o;
  o.image_size = 128;
  o.latent_size = 8;
  o.hidden_size = 256;
  o.depth = 4;
  ASSERT_OK(invad::testing::WriteTinyBundle((fs::path(repo_) / "tiny").string(), o).status());
  absl::StatusOr<ReloadSummary> r = server_->Reload();
  load.join();
  ASSERT_OK(r.status());
  EXPECT_THAT(r->unloaded, ::testing::ElementsAre("tiny/1"));
  for (grpc::StatusCode c : codes) EXPECT_EQ(c, grpc::StatusCode::OK);
}

TEST_F(LoadedServerTest, ARequestWhoseDeadlinePassesWhileQueuedIsDroppedUncomputed) {
  StartServer();
  // 40 requests with a deadline far shorter than the queue ahead of the last ones (~10 ms each).
  const std::vector<grpc::StatusCode> codes = Burst(40, std::chrono::milliseconds(150));
  int ok = 0, expired = 0;
  for (grpc::StatusCode c : codes) {
    ok += c == grpc::StatusCode::OK;
    expired += c == grpc::StatusCode::DEADLINE_EXCEEDED;
  }
  EXPECT_GE(expired, 1);
  EXPECT_EQ(ok + expired, 40);
  // Give the scheduler time to reach the expired tasks (liveness bound, not a timing claim).
  v1::ScoreResponse resp;
  ASSERT_TRUE(Score(Request(), &resp).ok());
  const std::string text = server_->metrics().Serialize();
  // Dropped by the scheduler as expired (never reached the model), not merely timed out
  // client-side.
  // (Every reason's series exists from the start at 0, so the value is what counts.)
  EXPECT_GE(
      MetricValue(text, R"(invad_dropped_tasks_total{model="tiny",reason="expired",version="1"})"),
      1)
      << text;
  // Every task ends once at the scheduler: warm-up (sizes 1 and max_batch_size 1: 2 tasks), the
  // burst and the last call. Those it dropped as expired never reached the model; one that
  // finished right at its deadline may count as ok here and still look expired to the client.
  // (A call whose deadline passes before the server's handler runs never becomes a task.)
  const double done_ok =
      MetricValue(text, R"(invad_tasks_total{model="tiny",outcome="ok",version="1"})");
  const double dropped =
      MetricValue(text, R"(invad_tasks_total{model="tiny",outcome="expired",version="1"})");
  EXPECT_GE(dropped, 1);
  EXPECT_GE(done_ok, 2 + ok + 1);
  EXPECT_LE(done_ok + dropped, 2 + 40 + 1);
}

// GET http://127.0.0.1:port/path, the body ("" on failure).
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  ::close(fd);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

// The exposer starts in a binary that links LibTorch (platform.md P3), serves every documented
// family after traffic, and the output passes `promtool check metrics`.
TEST_F(ServerTest, MetricsEndpointServesDocumentedFamiliesThatPromtoolAccepts) {
  options_.metrics_address = "127.0.0.1:0";
  StartServer();
  ASSERT_GT(server_->metrics().exposer_port(), 0);
  v1::ScoreResponse resp;
  ASSERT_TRUE(Score(Request(), &resp).ok());
  v1::ScoreRequest bad = Request();
  bad.set_steps(4);
  EXPECT_FALSE(Score(bad, &resp).ok());
  bad.set_model("no-such-model");
  EXPECT_FALSE(Score(bad, &resp).ok());

  const std::string text = HttpGet(server_->metrics().exposer_port(), "/metrics");
  for (const char* name :
       {"invad_requests_total", "invad_request_duration_seconds", "invad_queue_duration_seconds",
        "invad_model_call_duration_seconds", "invad_batch_size", "invad_queue_depth",
        "invad_queue_capacity", "invad_inflight_requests", "invad_tasks_total", "invad_model_ready",
        "invad_anomalies_total", "invad_score", "invad_build_info"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name << " missing from /metrics";
  }
  EXPECT_NE(
      text.find(R"(invad_requests_total{code="OK",method="Score",model="tiny",version="1"} 1)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(code="INVALID_ARGUMENT",method="Score",model="tiny")"), std::string::npos);
  EXPECT_NE(text.find(R"(code="NOT_FOUND",method="Score",model="_unknown")"), std::string::npos);
  EXPECT_EQ(text.find("no-such-model"), std::string::npos) << "unknown names must not be labels";
  EXPECT_NE(text.find(R"(invad_model_ready{model="tiny",version="1"} 1)"), std::string::npos);

  // Every family must be documented (docs/metrics.md is the contract deploy files rely on).
  const char* src = std::getenv("INVAD_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  std::ifstream doc(fs::path(src) / "docs" / "metrics.md");
  const std::string docs((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    const std::string family = line.substr(7, line.find(' ', 7) - 7);
    EXPECT_NE(docs.find("`" + family + "`"), std::string::npos)
        << family << " not in docs/metrics.md";
  }

  const std::string file = repo_ + "/metrics.txt";
  std::ofstream(file) << text;
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    if (std::getenv("CI") != nullptr && std::string(std::getenv("CI")) == "true") {
      FAIL() << "promtool missing (scripts/install-deps.sh installs Debian's prometheus)";
    }
    GTEST_SKIP() << "promtool not installed";
  }
  const int rc = std::system(("promtool check metrics < " + file + " 2>&1").c_str());
  EXPECT_EQ(rc, 0) << "promtool check metrics failed on:\n" << text;
}

}  // namespace
}  // namespace invad::server

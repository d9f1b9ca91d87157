// End-to-end serving cost (issue 5), figures for docs/benchmarks.md via bench/run_server_bench.sh:
//   BM_Core   closed loop straight into the model's scheduler (preprocessed tensors): the bare core
//   BM_Grpc   the same model through invad-server's gRPC service in this process, C closed-loop
//             clients on one channel; images as raw RGB pixels at the network size, or PNG
// Same repository, same scheduler options, same run. Per-request overhead = the p50 difference at
// 1 client; the throughput ratio at saturation = BM_Grpc / BM_Core at 16 and 32 clients.
//
//   build/release/bench/server_bench --repo=MODEL_REPOSITORY --model=NAME [--threads=2]
//       [--max_batch=16] [benchmark flags]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "grpcpp/create_channel.h"

#include "bench/bench_flags.h"
#include "core/base/mutex.h"
#include "core/runtime/runtime.h"
#include "invad/v1/inference.grpc.pb.h"
#include "preprocess/preprocess.h"
#include "server/server.h"

namespace invad::bench {
namespace {

struct Flags {
  std::string repo, model;
  int threads = 2;
  int max_batch = 16;
} flags;

server::Server& TheServer() {
  static server::Server* s = [] {
    server::ServerOptions o;
    o.grpc_address = "127.0.0.1:0";
    o.repository.root = flags.repo;
    o.repository.scheduler.max_batch_size = flags.max_batch;
    auto* srv = new server::Server(o);
    if (!srv->Start().ok() || !srv->LoadModels().ok() ||
        !srv->repository().Find(flags.model, 0).ok()) {
      std::fprintf(stderr, "server_bench: cannot serve %s from %s\n", flags.model.c_str(),
                   flags.repo.c_str());
      std::exit(2);
    }
    return srv;
  }();
  return *s;
}

cv::Mat TestImage(int w, int h) {
  cv::Mat img(h, w, CV_8UC3);
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(255));
  return img;
}

struct Load {
  double throughput = 0, p50_ms = 0, p99_ms = 0;
};

// `call` runs one request and returns whether it succeeded.
template <typename Call>
Load ClosedLoop(int clients, double seconds, Call call) {
  core::Mutex mu;
  std::vector<double> lat;
  std::atomic<int64_t> done{0}, failed{0};
  const auto start = std::chrono::steady_clock::now();
  const auto stop = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      while (std::chrono::steady_clock::now() < stop) {
        const auto t0 = std::chrono::steady_clock::now();
        const bool ok = call(c);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        if (!ok) {
          ++failed;
          continue;
        }
        ++done;
        core::MutexLock l(&mu);
        lat.push_back(ms);
      }
    });
  }
  for (auto& t : ts) t.join();
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed > 0) std::fprintf(stderr, "server_bench: %lld failed requests\n", (long long)failed);
  core::MutexLock l(&mu);
  return {done / el, Percentile(lat, 0.5), Percentile(lat, 0.99)};
}

void Report(benchmark::State& state, const Load& r) {
  state.counters["tasks_per_s"] = r.throughput;
  state.counters["p50_ms"] = r.p50_ms;
  state.counters["p99_ms"] = r.p99_ms;
}

void BM_Core(benchmark::State& state) {
  server::Server& srv = TheServer();
  std::shared_ptr<server::ServedModel> m = *srv.repository().Find(flags.model, 0);
  const preprocess::InputSpec& spec = m->input;
  core::Tensor image({spec.channels(), spec.height, spec.width});
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (float& v : image.span()) v = nd(rng);
  const int steps = m->bundle.config.diffusion().default_steps();
  auto call = [&](int) {
    core::Mutex mu;
    core::CondVar cv;
    bool finished = false, ok = false;
    core::Task t;
    t.image = image;
    t.steps = steps;
    t.done = [&](absl::StatusOr<core::TaskResult> r) {
      core::MutexLock l(&mu);
      ok = r.ok();
      finished = true;
      cv.notify_all();
    };
    if (!m->scheduler->Submit(std::move(t)).ok()) return false;
    core::MutexLock l(&mu);
    cv.wait(mu, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return finished; });
    return ok;
  };
  ClosedLoop(1, 0.5, call);  // warm-up
  Load r;
  for (auto _ : state) r = ClosedLoop(static_cast<int>(state.range(0)), 4.0, call);
  Report(state, r);
}
BENCHMARK(BM_Core)
    ->ArgNames({"clients"})
    ->Arg(1)
    ->Arg(16)
    ->Arg(32)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

void BM_Grpc(benchmark::State& state) {
  server::Server& srv = TheServer();
  std::shared_ptr<server::ServedModel> m = *srv.repository().Find(flags.model, 0);
  const bool png = state.range(1) != 0;
  const cv::Mat img = TestImage(m->input.width, m->input.height);
  v1::ScoreRequest req;
  req.set_model(flags.model);
  if (png) {
    std::vector<uint8_t> buf;
    cv::imencode(".png", img, buf);
    req.mutable_image()->set_encoded(std::string(buf.begin(), buf.end()));
  } else {
    v1::RawImage* raw = req.mutable_image()->mutable_raw();
    raw->set_width(img.cols);
    raw->set_height(img.rows);
    raw->set_channels(3);
    raw->set_order(v1::BGR);
    raw->set_data(std::string(reinterpret_cast<const char*>(img.data), img.total() * 3));
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", srv.port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::AnomalyDetection::NewStub(channel);
  auto call = [&](int) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ScoreResponse resp;
    return stub->Score(&ctx, req, &resp).ok();
  };
  ClosedLoop(1, 0.5, call);  // warm-up
  Load r;
  for (auto _ : state) r = ClosedLoop(static_cast<int>(state.range(0)), 4.0, call);
  Report(state, r);
}
BENCHMARK(BM_Grpc)
    ->ArgNames({"clients", "png"})
    ->ArgsProduct({{1, 16, 32}, {0, 1}})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace invad::bench

int main(int argc, char** argv) {
  using invad::bench::flags;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (invad::bench::TakeFlag(argv[i], "--repo", &v)) {
      flags.repo = v;
    } else if (invad::bench::TakeFlag(argv[i], "--model", &v)) {
      flags.model = v;
    } else if (invad::bench::TakeFlag(argv[i], "--threads", &v)) {
      flags.threads = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--max_batch", &v)) {
      flags.max_batch = std::atoi(v.c_str());
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (flags.repo.empty() || flags.model.empty()) {
    std::fprintf(stderr, "usage: server_bench --repo=MODEL_REPOSITORY --model=NAME\n");
    return 2;
  }
  if (!invad::core::ConfigureProcess(flags.threads).ok()) return 2;
  benchmark::AddCustomContext("invad_threads", std::to_string(flags.threads));
  benchmark::AddCustomContext("invad_max_batch", std::to_string(flags.max_batch));
  return invad::bench::RunBenchmarks(rest);
}

// invad: the command line for lines and operators (docs/cli.md).
//   invad score <files|dirs|globs> --model=M [--json|--csv] [--overlay_dir=D] [--threshold=T]
//   invad health [--service=S] [--json]
//   invad models [--json]
//   invad bench, invad stream --source=S, invad watch <hot folder> (see --help)
// Every subcommand takes --target (default localhost:50051) and the TLS/token flags.
// Exit status: 0 ok (score: every image normal), 1 score: an anomaly (--fail_on_anomaly=false
// turns that off) / health: not serving, 2 errors.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <glob.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "client/cli/files.h"
#include "client/cli/watch.h"
#include "invad/client/client.h"
#include "tools/common/progress.h"

ABSL_FLAG(std::string, target, "localhost:50051", "Server: host:port or dns:///host:port.");
ABSL_FLAG(std::string, tls_ca_file, "", "PEM CA of the server's certificate (TLS on).");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM client certificate (mutual TLS).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_server_name, "", "Name to check in the server's certificate.");
ABSL_FLAG(std::string, token_file, "", "File with the bearer token the server asks for.");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(30), "Per-request deadline.");
ABSL_FLAG(bool, json, false, "JSON output (one object per line for score).");
ABSL_FLAG(bool, csv, false, "score: CSV output with a header line.");
ABSL_FLAG(std::string, model, "", "score: model name (default: the only served model).");
ABSL_FLAG(int64_t, version, 0, "score: model version (0: latest).");
ABSL_FLAG(std::string, category, "", "score: category of a multi-category model.");
ABSL_FLAG(int, steps, 0, "score: K (0: the model's default).");
ABSL_FLAG(std::optional<double>, threshold, std::nullopt,
          "score: image threshold instead of the calibrated one.");
ABSL_FLAG(std::string, overlay_dir, "",
          "score: write <name>_overlay.png per image: image | heat map with the defect contour, "
          "verdict and score.");
ABSL_FLAG(bool, fail_on_anomaly, true, "score: exit status 1 when any image is anomalous.");
ABSL_FLAG(bool, progress, true, "score: progress bar on stderr when scoring directories.");
ABSL_FLAG(std::string, service, "", "health: service to check (\"\" = ready, \"liveness\").");
ABSL_FLAG(std::string, source, "",
          "stream: a video file, a camera index, an rtsp:// (or other OpenCV) URL, or a folder of "
          "images.");
ABSL_FLAG(double, fps, 0, "stream: frames per second to send (0: as fast as the source reads).");
ABSL_FLAG(int64_t, max_frames, 0, "stream: stop after this many frames (0: the whole source).");
ABSL_FLAG(int, max_in_flight, 16, "stream: unanswered frames before the overload policy applies.");
ABSL_FLAG(bool, drop_oldest, false,
          "stream: when max_in_flight frames are unanswered, drop the oldest unsent frame instead "
          "of waiting (a live camera must not fall behind).");
ABSL_FLAG(std::string, ok_dir, "", "watch: where normal images go (default <folder>/ok).");
ABSL_FLAG(std::string, ng_dir, "", "watch: where anomalous images go (default <folder>/ng).");
ABSL_FLAG(std::string, error_dir, "",
          "watch: where images the server rejects (bad files) go (default <folder>/error).");
ABSL_FLAG(std::string, results, "",
          "watch: CSV file results are appended to (default <folder>/results.csv).");
ABSL_FLAG(absl::Duration, settle, absl::Milliseconds(500),
          "watch: a file counts as completely written once its writer closed it (inotify) and its "
          "size and time stayed unchanged this long (files without events: this alone).");
ABSL_FLAG(absl::Duration, poll_interval, absl::Milliseconds(200), "watch: folder scan period.");
ABSL_FLAG(bool, once, false, "watch: process what is there (once settled), then exit.");
ABSL_FLAG(std::vector<std::string>, concurrency, {"1"},
          "bench: closed-loop clients, one level or a sweep (\"1,2,4,8,16,32\").");
ABSL_FLAG(double, rate, 0,
          "bench: open loop at this many requests/s (Poisson arrivals) instead of --concurrency.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "bench: time per level.");
ABSL_FLAG(int64_t, requests, 0,
          "bench: send exactly this many requests per level (overrides --duration; 0: by time).");
ABSL_FLAG(int, warmup, 10, "bench: warm-up requests before measuring (not counted).");
ABSL_FLAG(std::string, image, "",
          "bench: image file to send (default: random pixels at the model's input size).");
ABSL_FLAG(absl::Duration, cancel_after, absl::ZeroDuration(),
          "bench: cancel --cancel_fraction of the requests this long after sending them.");
ABSL_FLAG(double, cancel_fraction, 0.0,
          "bench: share of requests to cancel (with --cancel_after).");

namespace {

namespace fs = std::filesystem;
using invad::cli::CsvField;
using invad::cli::IsImageFile;
using invad::client::Client;

constexpr char kUsage[] = R"(invad: score images on an invad-server, check it, list its models.

  invad score <files|dirs|globs> [--model=M] [--json|--csv] [--overlay_dir=D] [--threshold=T]
  invad health [--service=S] [--json]
  invad models [--json]
  invad stream --source=<video | camera index | rtsp://... | folder> [--fps=F] [--max_frames=N]
               [--max_in_flight=16] [--drop_oldest] [--json]
  invad watch <hot-folder> [--ok_dir=D] [--ng_dir=D] [--results=F.csv] [--once]
  invad bench [--concurrency=1,2,4,8 | --rate=R] [--duration=10s] [--requests=N] [--warmup=10]
              [--cancel_after=50ms --cancel_fraction=0.1] [--image=F] [--json]

Common flags: --target (default localhost:50051), --tls_ca_file, --tls_cert_file, --tls_key_file,
--tls_server_name, --token_file, --deadline. `invad <subcommand> --help` lists every flag.
Exit status: 0 ok; 1 an anomaly (score) or not serving (health); 2 an error.)";

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

absl::StatusOr<std::unique_ptr<Client>> Connect() {
  invad::client::ClientOptions o;
  o.target = absl::GetFlag(FLAGS_target);
  o.tls_ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  o.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  o.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  o.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  o.default_deadline = absl::GetFlag(FLAGS_deadline);
  if (const std::string f = absl::GetFlag(FLAGS_token_file); !f.empty()) {
    std::ifstream in(f);
    if (!in) return absl::InvalidArgumentError("cannot read --token_file " + f);
    std::string token;
    in >> token;
    o.bearer_token = token;
  }
  return Client::Create(o);
}

// --model, or the server's only model when it names none.
absl::StatusOr<std::string> ModelToUse(Client& client) {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (!model.empty()) return model;
  absl::StatusOr<std::vector<invad::client::ModelDescription>> models = client.ListModels();
  if (!models.ok()) return models.status();
  if (models->size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the server has ", models->size(), " models; name one with --model"));
  }
  return (*models)[0].name;
}

// Files as given; directories recursively (image files, sorted); globs expanded.
absl::StatusOr<std::vector<std::string>> ExpandInputs(const std::vector<char*>& args,
                                                      bool* any_dir) {
  std::vector<std::string> out;
  for (const char* a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      *any_dir = true;
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(a, ec)) {
        if (e.is_regular_file() && IsImageFile(e.path())) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(a, ec)) {
      out.push_back(a);
    } else {
      glob_t g;
      if (glob(a, 0, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
        globfree(&g);
      } else {
        return absl::NotFoundError(absl::StrCat("no such file, folder or match: ", a));
      }
    }
  }
  if (out.empty()) return absl::NotFoundError("no images to score");
  return out;
}

// image | heat map (0 at zero, red at twice the pixel threshold) with the defect contour at the
// pixel threshold, verdict and score written on it.
absl::Status WriteOverlay(const std::string& file, const std::string& bytes,
                          const invad::client::ScoreResult& r, double pixel_threshold,
                          const std::string& dir) {
  cv::Mat img = cv::imdecode(
      cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
      cv::IMREAD_COLOR);
  if (img.empty()) return absl::InvalidArgumentError("cannot decode " + file + " for the overlay");
  if (r.map_width != img.cols || r.map_height != img.rows) {
    return absl::InternalError("the map does not have the image's size");
  }
  cv::Mat map(r.map_height, r.map_width, CV_32F, const_cast<float*>(r.map.data()));
  cv::Mat scaled, heat;
  map.convertTo(scaled, CV_8U, 128.0 / std::max(pixel_threshold, 1e-12));
  cv::applyColorMap(scaled, heat, cv::COLORMAP_JET);
  cv::Mat blended;
  cv::addWeighted(img, 0.5, heat, 0.5, 0, blended);
  cv::Mat mask = map > static_cast<float>(pixel_threshold);
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  cv::drawContours(blended, contours, -1, cv::Scalar(255, 255, 255), 2);
  cv::Mat out;
  cv::hconcat(img, blended, out);
  const std::string label = absl::StrFormat("%s  score %.2f  threshold %.2f",
                                            r.anomalous ? "ANOMALOUS" : "ok", r.score, r.threshold);
  cv::putText(out, label, cv::Point(8, 20), cv::FONT_HERSHEY_SIMPLEX, 0.5,
              r.anomalous ? cv::Scalar(0, 0, 255) : cv::Scalar(0, 200, 0), 1, cv::LINE_AA);
  fs::create_directories(dir);
  // Unique per input path: "a/b/000.png" -> "a_b_000_overlay.png".
  std::string name =
      (fs::path(file).parent_path() / fs::path(file).stem()).relative_path().string();
  std::replace(name.begin(), name.end(), '/', '_');
  const std::string path = (fs::path(dir) / (name + "_overlay.png")).string();
  try {
    if (!cv::imwrite(path, out)) return absl::InternalError("cannot write " + path);
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", e.what()));
  }
  return absl::OkStatus();
}

int Score(const std::vector<char*>& args) {
  bool any_dir = false;
  absl::StatusOr<std::vector<std::string>> files = ExpandInputs(args, &any_dir);
  if (!files.ok()) {
    std::fprintf(stderr, "invad score: %s\n", files.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "invad score: %s\n", client.status().ToString().c_str());
    return 2;
  }
  std::string model = absl::GetFlag(FLAGS_model);
  const std::string overlay_dir = absl::GetFlag(FLAGS_overlay_dir);
  double pixel_threshold = 0;
  if (model.empty() || !overlay_dir.empty()) {
    absl::StatusOr<std::vector<invad::client::ModelDescription>> models = (*client)->ListModels();
    if (!models.ok()) {
      std::fprintf(stderr, "invad score: %s\n", models.status().ToString().c_str());
      return 2;
    }
    if (model.empty()) {
      if (models->size() != 1) {
        std::fprintf(stderr, "invad score: the server has %zu models; name one with --model\n",
                     models->size());
        return 2;
      }
      model = (*models)[0].name;
    }
    for (const auto& m : *models) {
      if (m.name != model) continue;
      for (const auto& v : m.versions) {
        if (v.state != "READY" || v.calibration.empty()) continue;
        const int k = absl::GetFlag(FLAGS_steps) > 0 ? absl::GetFlag(FLAGS_steps) : v.default_steps;
        for (const auto& c : v.calibration) {
          if (c.steps == k && c.category == absl::GetFlag(FLAGS_category)) {
            pixel_threshold = c.pixel_threshold;
          }
        }
      }
    }
  }
  invad::client::ScoreOptions so;
  so.model = model;
  so.version = absl::GetFlag(FLAGS_version);
  so.category = absl::GetFlag(FLAGS_category);
  so.steps = absl::GetFlag(FLAGS_steps);
  so.threshold = absl::GetFlag(FLAGS_threshold);
  if (!overlay_dir.empty()) so.map = invad::client::MapKind::kOriginal;
  const bool json = absl::GetFlag(FLAGS_json), csv = absl::GetFlag(FLAGS_csv);
  if (csv) std::printf("file,model,version,score,threshold,anomalous,regions,error\n");
  std::optional<invad::tools::ProgressBar> bar;
  if (any_dir && absl::GetFlag(FLAGS_progress)) {
    bar.emplace("score", static_cast<int>(files->size()));
  }
  int anomalies = 0, errors = 0, n = 0;
  for (const std::string& file : *files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    so.ids.frame_id = file;
    absl::StatusOr<invad::client::ScoreResult> r =
        in ? (*client)->Score(invad::client::Image::Encoded(bytes), so)
           : absl::StatusOr<invad::client::ScoreResult>(absl::NotFoundError("cannot read " + file));
    if (r.ok() && !overlay_dir.empty()) {
      if (absl::Status s = WriteOverlay(file, bytes, *r, pixel_threshold, overlay_dir); !s.ok()) {
        r = s;
      }
    }
    ++n;
    if (!r.ok()) {
      ++errors;
      if (json) {
        std::printf("{\"file\":%s,\"error\":{\"code\":%s,\"message\":%s}}\n",
                    JsonString(file).c_str(),
                    JsonString(absl::StatusCodeToString(r.status().code())).c_str(),
                    JsonString(std::string(r.status().message())).c_str());
      } else if (csv) {
        std::printf("%s,,,,,,,%s\n", CsvField(file).c_str(),
                    CsvField(r.status().ToString()).c_str());
      } else {
        std::printf("%s  ERROR %s\n", file.c_str(), r.status().ToString().c_str());
      }
    } else {
      anomalies += r->anomalous;
      if (json) {
        std::vector<std::string> regions;
        for (const auto& g : r->regions) {
          regions.push_back(absl::StrFormat(
              "{\"x\":%d,\"y\":%d,\"width\":%d,\"height\":%d,\"area\":%d,\"peak\":%.6g}", g.box.x,
              g.box.y, g.box.width, g.box.height, g.area, g.peak));
        }
        std::printf(
            "{\"file\":%s,\"model\":%s,\"version\":%d,\"steps\":%d,\"score\":%.6g,"
            "\"threshold\":%.6g,\"anomalous\":%s,\"regions\":[%s],\"queue_ms\":%.3f,"
            "\"compute_ms\":%.3f,\"server_ms\":%.3f}\n",
            JsonString(file).c_str(), JsonString(r->model).c_str(), static_cast<int>(r->version),
            r->steps, r->score, r->threshold, r->anomalous ? "true" : "false",
            absl::StrJoin(regions, ",").c_str(), absl::ToDoubleMilliseconds(r->queue_time),
            absl::ToDoubleMilliseconds(r->compute_time),
            absl::ToDoubleMilliseconds(r->server_time));
      } else if (csv) {
        std::printf("%s,%s,%d,%.6g,%.6g,%d,%zu,\n", CsvField(file).c_str(),
                    CsvField(r->model).c_str(), static_cast<int>(r->version), r->score,
                    r->threshold, r->anomalous ? 1 : 0, r->regions.size());
      } else {
        std::printf("%s  %s  score %.3f  threshold %.3f  (%s v%d)\n", file.c_str(),
                    r->anomalous ? "ANOMALOUS" : "ok", r->score, r->threshold, r->model.c_str(),
                    static_cast<int>(r->version));
      }
    }
    std::fflush(stdout);
    if (bar) bar->Update(n, absl::StrCat(anomalies, " anomalous"));
  }
  if (bar) bar->Finish(absl::StrCat(anomalies, " anomalous, ", errors, " errors"));
  if (!json && !csv) {
    std::fprintf(stderr, "invad score: %d images, %d anomalous, %d errors\n", n, anomalies, errors);
  }
  if (errors > 0) return 2;
  return anomalies > 0 && absl::GetFlag(FLAGS_fail_on_anomaly) ? 1 : 0;
}

int Health() {
  absl::StatusOr<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "invad health: %s\n", client.status().ToString().c_str());
    return 2;
  }
  const std::string service = absl::GetFlag(FLAGS_service);
  absl::StatusOr<invad::client::HealthStatus> h = (*client)->Health(service);
  if (!h.ok()) {
    if (absl::GetFlag(FLAGS_json)) {
      std::printf("{\"target\":%s,\"service\":%s,\"error\":%s}\n",
                  JsonString(absl::GetFlag(FLAGS_target)).c_str(), JsonString(service).c_str(),
                  JsonString(h.status().ToString()).c_str());
    } else {
      std::fprintf(stderr, "invad health: %s\n", h.status().ToString().c_str());
    }
    return 2;
  }
  const char* name = invad::client::HealthStatusName(*h);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("{\"target\":%s,\"service\":%s,\"status\":%s}\n",
                JsonString(absl::GetFlag(FLAGS_target)).c_str(), JsonString(service).c_str(),
                JsonString(name).c_str());
  } else {
    std::printf("%s %s: %s\n", absl::GetFlag(FLAGS_target).c_str(),
                service.empty() ? "(ready)" : service.c_str(), name);
  }
  return *h == invad::client::HealthStatus::kServing ? 0 : 1;
}

int Models() {
  absl::StatusOr<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "invad models: %s\n", client.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::vector<invad::client::ModelDescription>> models = (*client)->ListModels();
  if (!models.ok()) {
    std::fprintf(stderr, "invad models: %s\n", models.status().ToString().c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::vector<std::string> ms;
    for (const auto& m : *models) {
      std::vector<std::string> vs;
      for (const auto& v : m.versions) {
        std::vector<std::string> cats;
        for (const auto& c : v.categories) cats.push_back(JsonString(c));
        vs.push_back(absl::StrFormat(
            "{\"version\":%d,\"state\":%s,\"error\":%s,\"input\":[%d,%d,%d],"
            "\"allowed_steps\":[%s],\"default_steps\":%d,\"categories\":[%s],\"device\":%s,"
            "\"precision\":%s}",
            v.version, JsonString(v.state), JsonString(v.error), v.input_width, v.input_height,
            v.input_channels, absl::StrJoin(v.allowed_steps, ","), v.default_steps,
            absl::StrJoin(cats, ","), JsonString(v.device), JsonString(v.precision)));
      }
      ms.push_back(absl::StrFormat("{\"name\":%s,\"versions\":[%s]}", JsonString(m.name),
                                   absl::StrJoin(vs, ",")));
    }
    std::printf("{\"models\":[%s]}\n", absl::StrJoin(ms, ",").c_str());
    return 0;
  }
  std::printf("%-16s %-8s %-8s %-12s %-18s %-10s %s\n", "MODEL", "VERSION", "STATE", "INPUT",
              "STEPS (DEFAULT)", "PRECISION", "CATEGORIES");
  for (const auto& m : *models) {
    for (const auto& v : m.versions) {
      std::printf(
          "%-16s %-8d %-8s %-12s %-18s %-10s %s%s%s\n", m.name.c_str(), static_cast<int>(v.version),
          v.state.c_str(),
          absl::StrFormat("%dx%dx%d", v.input_width, v.input_height, v.input_channels).c_str(),
          absl::StrCat(absl::StrJoin(v.allowed_steps, ","), " (", v.default_steps, ")").c_str(),
          v.precision.c_str(), absl::StrJoin(v.categories, ",").c_str(),
          v.error.empty() ? "" : "  error: ", v.error.c_str());
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// invad bench: load generation in the manner of Triton's perf_analyzer.

struct BenchStats {
  std::string label;
  int64_t ok = 0;
  std::map<std::string, int64_t> codes;                  // every outcome by code name, OK included
  std::vector<double> latency_ms;                        // successful requests
  std::map<std::string, std::vector<double>> failed_ms;  // failed requests, by code
  double queue_ms = 0, compute_ms = 0;  // sums over successful requests (server-side)
  double seconds = 0;
};

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

// Cancels a share of the calls `after` their start, from one thread (deadlines are FIFO).
class Canceller {
 public:
  Canceller(absl::Duration after, double fraction) : after_(after), fraction_(fraction) {
    if (fraction_ > 0 && after_ > absl::ZeroDuration()) thread_ = std::thread([this] { Loop(); });
  }
  ~Canceller() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Maybe(std::shared_ptr<invad::client::PendingCall> call) {
    if (!thread_.joinable()) return;
    std::lock_guard<std::mutex> l(mu_);
    if (std::uniform_real_distribution<double>(0, 1)(rng_) >= fraction_) return;
    queue_.emplace_back(absl::Now() + after_, std::move(call));
    cv_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      if (queue_.empty()) {
        cv_.wait(l);
        continue;
      }
      const absl::Time due = queue_.front().first;
      if (absl::Now() < due) {
        cv_.wait_for(l, absl::ToChronoNanoseconds(due - absl::Now()));
        continue;
      }
      auto call = std::move(queue_.front().second);
      queue_.pop_front();
      l.unlock();
      call->Cancel();
      l.lock();
    }
  }
  const absl::Duration after_;
  const double fraction_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<absl::Time, std::shared_ptr<invad::client::PendingCall>>> queue_;
  std::mt19937_64 rng_{7};
  bool stop_ = false;
  std::thread thread_;
};

// One level: `clients` > 0 closed loop (each client sends its next request when the previous
// answers), else an open loop at `rate` requests/s. Stops after --duration or --requests.
BenchStats RunLevel(Client& client, const invad::client::Image& image,
                    const invad::client::ScoreOptions& so, int clients, double rate) {
  BenchStats st;
  st.label = clients > 0 ? absl::StrCat("concurrency ", clients) : absl::StrCat("rate ", rate);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const int64_t cap = absl::GetFlag(FLAGS_requests);
  Canceller canceller(absl::GetFlag(FLAGS_cancel_after), absl::GetFlag(FLAGS_cancel_fraction));
  std::mutex mu;
  int64_t issued = 0, outstanding = 0;
  const absl::Time start = absl::Now(), stop = start + duration;
  // Takes a request slot: false once the level is over.
  auto take = [&]() {
    std::lock_guard<std::mutex> l(mu);
    if ((cap > 0 && issued >= cap) || (cap == 0 && absl::Now() >= stop)) return false;
    ++issued;
    ++outstanding;
    return true;
  };
  auto record = [&](const absl::StatusOr<invad::client::ScoreResult>& r, absl::Time t0) {
    std::lock_guard<std::mutex> l(mu);
    ++st.codes[absl::StatusCodeToString(r.status().code())];
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
    if (r.ok()) {
      ++st.ok;
      st.latency_ms.push_back(ms);
      st.queue_ms += absl::ToDoubleMilliseconds(r->queue_time);
      st.compute_ms += absl::ToDoubleMilliseconds(r->compute_time);
    } else {
      st.failed_ms[absl::StatusCodeToString(r.status().code())].push_back(ms);
    }
  };
  // One request, waited for; cancellable by the Canceller. The promise is shared with the
  // callback, which may still be finishing when the waiter moves on.
  auto one = [&]() {
    const absl::Time t0 = absl::Now();
    auto done = std::make_shared<std::promise<absl::StatusOr<invad::client::ScoreResult>>>();
    auto result = done->get_future();
    canceller.Maybe(client.ScoreAsync(
        image, so, [done](absl::StatusOr<invad::client::ScoreResult> r) { done->set_value(r); }));
    record(result.get(), t0);
  };
  if (clients > 0) {
    // Closed loop: each client thread sends its next request when the previous one answers.
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        while (take()) {
          one();
          std::lock_guard<std::mutex> l(mu);
          --outstanding;
        }
      });
    }
    for (auto& t : threads) t.join();
  } else {
    // Open loop: Poisson arrivals at `rate`, each an async call answered on gRPC's threads (no
    // thread per request); the level ends when every call has answered.
    std::mt19937_64 rng(11);
    std::exponential_distribution<double> gap(rate);
    std::condition_variable all_done;
    absl::Time next = start;
    while (take()) {
      const absl::Time t0 = absl::Now();
      canceller.Maybe(
          client.ScoreAsync(image, so, [&, t0](absl::StatusOr<invad::client::ScoreResult> r) {
            record(r, t0);
            std::lock_guard<std::mutex> l(mu);
            if (--outstanding == 0) all_done.notify_all();
          }));
      next += absl::Seconds(gap(rng));
      absl::SleepFor(next - absl::Now());
    }
    std::unique_lock<std::mutex> l(mu);
    all_done.wait(l, [&] { return outstanding == 0; });
  }
  st.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return st;
}

int Bench() {
  absl::StatusOr<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "invad bench: %s\n", client.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::vector<invad::client::ModelDescription>> models = (*client)->ListModels();
  if (!models.ok()) {
    std::fprintf(stderr, "invad bench: %s\n", models.status().ToString().c_str());
    return 2;
  }
  std::string model = absl::GetFlag(FLAGS_model);
  const invad::client::ModelVersion* served = nullptr;
  for (const auto& m : *models) {
    if ((model.empty() && models->size() == 1) || m.name == model) {
      model = m.name;
      for (const auto& v : m.versions) {
        if (v.state == "READY") served = &v;
      }
    }
  }
  if (served == nullptr) {
    std::fprintf(stderr, "invad bench: no READY model %s (name one with --model)\n", model.c_str());
    return 2;
  }
  invad::client::Image image;
  if (const std::string f = absl::GetFlag(FLAGS_image); !f.empty()) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) {
      std::fprintf(stderr, "invad bench: cannot read %s\n", f.c_str());
      return 2;
    }
    image = invad::client::Image::Encoded(ss.str());
  } else {
    std::string px(static_cast<size_t>(served->input_width) * served->input_height * 3, '\0');
    std::mt19937 rng(5);
    for (char& c : px) c = static_cast<char>(rng());
    image = invad::client::Image::Raw(served->input_width, served->input_height, 3, px);
  }
  invad::client::ScoreOptions so;
  so.model = model;
  so.steps = absl::GetFlag(FLAGS_steps);
  so.category = absl::GetFlag(FLAGS_category);
  so.deadline = absl::GetFlag(FLAGS_deadline);
  for (int i = 0; i < absl::GetFlag(FLAGS_warmup); ++i) (void)(*client)->Score(image, so);

  std::vector<std::pair<int, double>> levels;  // (clients, rate)
  if (absl::GetFlag(FLAGS_rate) > 0) {
    levels.emplace_back(0, absl::GetFlag(FLAGS_rate));
  } else {
    for (const std::string& c : absl::GetFlag(FLAGS_concurrency)) {
      int n = 0;
      if (!absl::SimpleAtoi(c, &n) || n < 1) {
        std::fprintf(stderr, "invad bench: bad --concurrency value '%s'\n", c.c_str());
        return 2;
      }
      levels.emplace_back(n, 0);
    }
  }
  const bool json = absl::GetFlag(FLAGS_json);
  if (!json) {
    std::printf("%-16s %8s %9s %8s %8s %8s %8s %9s %10s  %s\n", "level", "requests", "req/s",
                "p50 ms", "p90 ms", "p95 ms", "p99 ms", "queue ms", "compute ms", "codes");
  }
  int64_t failures = 0;
  for (const auto& [clients, rate] : levels) {
    BenchStats st = RunLevel(**client, image, so, clients, rate);
    int64_t n = 0;
    std::vector<std::string> codes;
    for (const auto& [code, count] : st.codes) {
      n += count;
      if (code != "OK") failures += count;
      codes.push_back(json ? absl::StrFormat("%s:%d", JsonString(code), count)
                           : absl::StrCat(code, "=", count));
    }
    const double okn = std::max<int64_t>(st.ok, 1);
    std::vector<std::string> failed;  // p50/p99 of failed requests by code (JSON)
    for (auto& [code, ms] : st.failed_ms) {
      failed.push_back(absl::StrFormat("%s:{\"p50_ms\":%.3f,\"p99_ms\":%.3f}", JsonString(code),
                                       Quantile(ms, 0.5), Quantile(ms, 0.99)));
    }
    const double p50 = Quantile(st.latency_ms, 0.5), p90 = Quantile(st.latency_ms, 0.9),
                 p95 = Quantile(st.latency_ms, 0.95), p99 = Quantile(st.latency_ms, 0.99);
    if (json) {
      std::printf(
          "{\"level\":%s,\"concurrency\":%d,\"rate\":%g,\"requests\":%d,\"seconds\":%.3f,"
          "\"throughput\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,"
          "\"server_queue_ms\":%.3f,\"server_compute_ms\":%.3f,\"codes\":{%s},"
          "\"failed_latency\":{%s}}\n",
          JsonString(st.label).c_str(), clients, rate, static_cast<int>(n), st.seconds,
          st.ok / st.seconds, p50, p90, p95, p99, st.queue_ms / okn, st.compute_ms / okn,
          absl::StrJoin(codes, ",").c_str(), absl::StrJoin(failed, ",").c_str());
    } else {
      std::printf("%-16s %8d %9.1f %8.1f %8.1f %8.1f %8.1f %9.2f %10.2f  %s\n", st.label.c_str(),
                  static_cast<int>(n), st.ok / st.seconds, p50, p90, p95, p99, st.queue_ms / okn,
                  st.compute_ms / okn, absl::StrJoin(codes, " ").c_str());
    }
    std::fflush(stdout);
  }
  return failures > 0 && absl::GetFlag(FLAGS_cancel_fraction) == 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// invad stream: frames from a video, camera, URL or folder through ScoreStream, in order.

class FrameSource {
 public:
  static absl::StatusOr<std::unique_ptr<FrameSource>> Open(const std::string& source) {
    auto s = std::unique_ptr<FrameSource>(new FrameSource);
    std::error_code ec;
    if (fs::is_directory(source, ec)) {
      for (const auto& e : fs::directory_iterator(source, ec)) {
        if (e.is_regular_file() && IsImageFile(e.path())) s->files_.push_back(e.path().string());
      }
      std::sort(s->files_.begin(), s->files_.end());
      if (s->files_.empty()) return absl::NotFoundError("no images in " + source);
      return s;
    }
    int index = 0;
    const bool camera = absl::SimpleAtoi(source, &index);
    // A path that does not exist is an error at once: OpenCV would try every capture backend on
    // it, among them gphoto2's USB camera scan (slow, and it leaks in libgphoto2).
    if (!camera && !absl::StrContains(source, "://") && !fs::exists(source, ec)) {
      return absl::NotFoundError("no such file or folder: " + source);
    }
    try {
      const bool opened = camera ? s->capture_.open(index) : s->capture_.open(source);
      if (!opened) return absl::NotFoundError("OpenCV cannot open the source " + source);
    } catch (const cv::Exception& e) {
      return absl::NotFoundError(absl::StrCat("OpenCV cannot open ", source, ": ", e.what()));
    }
    return s;
  }
  // The next frame (BGR) and its id; false at the end.
  bool Next(cv::Mat* frame, std::string* id) {
    if (!files_.empty()) {
      while (next_ < files_.size()) {
        *id = files_[next_];
        *frame = cv::imread(files_[next_++], cv::IMREAD_COLOR);
        if (!frame->empty()) return true;
      }
      return false;
    }
    try {
      if (!capture_.read(*frame) || frame->empty()) return false;
    } catch (const cv::Exception&) {
      return false;
    }
    *id = std::to_string(count_++);
    return true;
  }

 private:
  std::vector<std::string> files_;
  size_t next_ = 0;
  cv::VideoCapture capture_;
  int64_t count_ = 0;
};

int Stream() {
  absl::StatusOr<std::unique_ptr<FrameSource>> source =
      FrameSource::Open(absl::GetFlag(FLAGS_source));
  if (!source.ok()) {
    std::fprintf(stderr, "invad stream: %s\n", source.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "invad stream: %s\n", client.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::string> model = ModelToUse(**client);
  if (!model.ok()) {
    std::fprintf(stderr, "invad stream: %s\n", model.status().ToString().c_str());
    return 2;
  }
  invad::client::StreamOptions so;
  so.defaults.model = *model;
  so.defaults.version = absl::GetFlag(FLAGS_version);
  so.defaults.category = absl::GetFlag(FLAGS_category);
  so.defaults.steps = absl::GetFlag(FLAGS_steps);
  so.defaults.threshold = absl::GetFlag(FLAGS_threshold);
  so.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  so.overload = absl::GetFlag(FLAGS_drop_oldest) ? invad::client::OverloadPolicy::kDropOldest
                                                 : invad::client::OverloadPolicy::kBlock;
  absl::StatusOr<std::unique_ptr<invad::client::StreamSession>> stream = (*client)->OpenStream(so);
  if (!stream.ok()) {
    std::fprintf(stderr, "invad stream: %s\n", stream.status().ToString().c_str());
    return 2;
  }
  const bool json = absl::GetFlag(FLAGS_json);
  std::mutex mu;
  std::map<uint64_t, absl::Time> sent_at;
  int64_t frames = 0, anomalies = 0, errors = 0, dropped = 0;
  std::vector<double> latency;
  std::thread reader([&] {
    while (std::optional<invad::client::FrameResult> r = (*stream)->Next()) {
      absl::Time t0;
      {
        std::lock_guard<std::mutex> l(mu);
        t0 = sent_at[r->sequence];
        sent_at.erase(r->sequence);
      }
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
      ++frames;
      if (r->dropped) {
        ++dropped;
        if (json) {
          std::printf("{\"frame_id\":%s,\"sequence\":%d,\"dropped\":true}\n",
                      JsonString(r->frame_id).c_str(), static_cast<int>(r->sequence));
        } else {
          std::printf("frame %s  DROPPED (overload)\n", r->frame_id.c_str());
        }
      } else if (!r->result.ok()) {
        ++errors;
        if (json) {
          std::printf("{\"frame_id\":%s,\"sequence\":%d,\"error\":{\"code\":%s,\"message\":%s}}\n",
                      JsonString(r->frame_id).c_str(), static_cast<int>(r->sequence),
                      JsonString(absl::StatusCodeToString(r->result.status().code())).c_str(),
                      JsonString(std::string(r->result.status().message())).c_str());
        } else {
          std::printf("frame %s  ERROR %s\n", r->frame_id.c_str(),
                      r->result.status().ToString().c_str());
        }
      } else {
        latency.push_back(ms);
        anomalies += r->result->anomalous;
        if (json) {
          std::printf(
              "{\"frame_id\":%s,\"sequence\":%d,\"score\":%.6g,\"threshold\":%.6g,"
              "\"anomalous\":%s,\"latency_ms\":%.3f}\n",
              JsonString(r->frame_id).c_str(), static_cast<int>(r->sequence), r->result->score,
              r->result->threshold, r->result->anomalous ? "true" : "false", ms);
        } else {
          std::printf("frame %s  %s  score %.3f  latency %.1f ms\n", r->frame_id.c_str(),
                      r->result->anomalous ? "ANOMALOUS" : "ok", r->result->score, ms);
        }
      }
      std::fflush(stdout);
    }
  });
  const double fps = absl::GetFlag(FLAGS_fps);
  const int64_t max_frames = absl::GetFlag(FLAGS_max_frames);
  absl::Time next = absl::Now();
  cv::Mat frame;
  std::string id;
  for (int64_t n = 0; (max_frames == 0 || n < max_frames) && (*source)->Next(&frame, &id); ++n) {
    if (fps > 0) {
      absl::SleepFor(next - absl::Now());
      next += absl::Seconds(1.0 / fps);
    }
    invad::client::Correlation ids;
    ids.frame_id = id;
    ids.capture_time_unix_ns = absl::ToUnixNanos(absl::Now());
    {
      std::lock_guard<std::mutex> l(mu);
      sent_at[static_cast<uint64_t>(n)] = absl::Now();
    }
    const std::string pixels(reinterpret_cast<const char*>(frame.data),
                             frame.total() * frame.elemSize());
    if (!(*stream)->Send(invad::client::Image::Raw(frame.cols, frame.rows, 3, pixels,
                                                   invad::client::PixelOrder::kBgr),
                         ids)) {
      break;
    }
  }
  const absl::Status st = (*stream)->Finish();
  reader.join();
  const double p50 = Quantile(latency, 0.5), p99 = Quantile(latency, 0.99);
  if (json) {
    std::printf(
        "{\"summary\":{\"frames\":%d,\"anomalies\":%d,\"errors\":%d,\"dropped\":%d,"
        "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"status\":%s}}\n",
        static_cast<int>(frames), static_cast<int>(anomalies), static_cast<int>(errors),
        static_cast<int>(dropped), p50, p99, JsonString(st.ToString()).c_str());
  } else {
    std::printf(
        "summary: %d frames, %d anomalous, %d errors, %d dropped; latency p50 %.1f ms, "
        "p99 %.1f ms; stream %s\n",
        static_cast<int>(frames), static_cast<int>(anomalies), static_cast<int>(errors),
        static_cast<int>(dropped), p50, p99, st.ToString().c_str());
  }
  if (!st.ok() || errors > 0) return 2;
  return anomalies > 0 && absl::GetFlag(FLAGS_fail_on_anomaly) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// invad watch: a hot folder. Each image is scored once it is completely written, its result is
// appended (and flushed to disk) to the results CSV, then the file is renamed into ok/, ng/ or
// error/. Restarts are exactly-once: an image already in the results (a crash between the append
// and the rename) is moved by its recorded verdict, not scored again. Server outages are waited
// out: the file stays and is retried.

std::atomic<bool> g_stop{false};  // lock-free: safe to set from a signal handler
void OnStop(int) { g_stop = true; }

int Watch(const std::vector<char*>& args) {
  if (args.size() != 1) {
    std::fprintf(stderr, "invad watch: one hot folder expected\n");
    return 2;
  }
  invad::cli::WatchOptions wo;
  wo.hot = args[0];
  wo.ok_dir = absl::GetFlag(FLAGS_ok_dir);
  wo.ng_dir = absl::GetFlag(FLAGS_ng_dir);
  wo.error_dir = absl::GetFlag(FLAGS_error_dir);
  wo.results = absl::GetFlag(FLAGS_results);
  wo.settle = absl::GetFlag(FLAGS_settle);
  wo.poll_interval = absl::GetFlag(FLAGS_poll_interval);
  wo.once = absl::GetFlag(FLAGS_once);
  absl::StatusOr<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "invad watch: %s\n", client.status().ToString().c_str());
    return 2;
  }
  // The model is resolved once; a server that is down at start is waited for.
  absl::StatusOr<std::string> model = ModelToUse(**client);
  while (!model.ok() && absl::IsUnavailable(model.status()) && !g_stop) {
    std::fprintf(stderr, "invad watch: %s (waiting for the server)\n",
                 model.status().ToString().c_str());
    absl::SleepFor(absl::Seconds(1));
    model = ModelToUse(**client);
  }
  if (!model.ok()) {
    std::fprintf(stderr, "invad watch: %s\n", model.status().ToString().c_str());
    return 2;
  }
  invad::client::ScoreOptions so;
  so.model = *model;
  so.version = absl::GetFlag(FLAGS_version);
  so.category = absl::GetFlag(FLAGS_category);
  so.steps = absl::GetFlag(FLAGS_steps);
  so.threshold = absl::GetFlag(FLAGS_threshold);
  auto scorer = [&](const std::string& name,
                    const std::string& bytes) -> absl::StatusOr<invad::cli::WatchScore> {
    so.ids.frame_id = name;
    absl::StatusOr<invad::client::ScoreResult> r =
        (*client)->Score(invad::client::Image::Encoded(bytes), so);
    if (!r.ok()) return r.status();
    return invad::cli::WatchScore{r->model, r->version, r->score, r->threshold, r->anomalous};
  };
  std::signal(SIGINT, OnStop);
  std::signal(SIGTERM, OnStop);
  absl::StatusOr<invad::cli::WatchSummary> summary = invad::cli::RunWatch(wo, scorer, g_stop);
  if (!summary.ok()) {
    std::fprintf(stderr, "invad watch: %s\n", summary.status().ToString().c_str());
    return 2;
  }
  std::fprintf(stderr, "invad watch: %lld scored, %lld moved after a restart, %lld retries\n",
               static_cast<long long>(summary->scored), static_cast<long long>(summary->replayed),
               static_cast<long long>(summary->retries));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view f) {
    return absl::StrContains(f, "client/cli/main.cc");
  };
  usage.version_string = [] { return std::string("invad ") + INVAD_VERSION + "\n"; };
  absl::SetFlagsUsageConfig(usage);
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2) absl::ParseCommandLine(argc, argv);  // --help, --version
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string sub = argv[1];
  std::vector<char*> rest = {argv[0]};
  for (int i = 2; i < argc; ++i) rest.push_back(argv[i]);
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(rest.size()), rest.data());
  positional.erase(positional.begin());
  if (sub == "score") return Score(positional);
  if (sub == "health") return Health();
  if (sub == "models") return Models();
  if (sub == "bench") return Bench();
  if (sub == "stream") return Stream();
  if (sub == "watch") return Watch(positional);
  std::fprintf(stderr, "invad: unknown subcommand '%s'\n\n%s\n", sub.c_str(), kUsage);
  return 2;
}

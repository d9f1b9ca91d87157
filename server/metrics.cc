#include "server/metrics.h"

#include <cctype>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace invad::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Latency buckets: 1 ms .. 30 s.
Histogram::BucketBoundaries SecondsBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}
Histogram::BucketBoundaries BatchBuckets() { return {1, 2, 4, 8, 16, 32, 64, 128}; }
// Calibrated scores: 0 = median normal image; thresholds sit around 3–10.
Histogram::BucketBoundaries ScoreBuckets() {
  return {-5, -2, -1, 0, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 50, 100};
}

std::string CodeName(absl::StatusCode code) {
  // gRPC's upper-case names (OK, INVALID_ARGUMENT, ...), as grpc-prometheus labels them.
  std::string s = absl::StatusCodeToString(code);
  for (char& c : s) {
    c = c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

}  // namespace

class Metrics::Observer final : public core::SchedulerObserver {
 public:
  Observer(Metrics* m, const std::string& model, int version)
      : m_(m),
        labels_{{"model", model}, {"version", std::to_string(version)}},
        queue_depth_(m->queue_depth_.Add(labels_)),
        queue_seconds_(m->queue_seconds_.Add(labels_, SecondsBuckets())),
        encode_seconds_(m->compute_seconds_.Add(With("kind", "encoder"), SecondsBuckets())),
        denoise_seconds_(m->compute_seconds_.Add(With("kind", "denoiser"), SecondsBuckets())),
        encode_batch_(m->batch_size_.Add(With("kind", "encoder"), BatchBuckets())),
        denoise_batch_(m->batch_size_.Add(With("kind", "denoiser"), BatchBuckets())) {
    // Every outcome and drop reason starts at 0, so rate() and alerts see the series from the
    // first scrape instead of from the first incident.
    for (int o = static_cast<int>(core::TaskOutcome::kOk);
         o <= static_cast<int>(core::TaskOutcome::kRejectedShutdown); ++o) {
      const auto outcome = static_cast<core::TaskOutcome>(o);
      m_->tasks_.Add(With("outcome", core::TaskOutcomeName(outcome)));
      if (outcome != core::TaskOutcome::kOk && outcome != core::TaskOutcome::kFailed) {
        m_->dropped_.Add(With("reason", core::TaskOutcomeName(outcome)));
      }
    }
  }

  void OnQueueDepth(int depth) override { queue_depth_.Set(depth); }
  void OnModelCall(core::CallKind kind, int batch_size, absl::Duration compute, bool) override {
    const bool enc = kind == core::CallKind::kEncode;
    (enc ? encode_seconds_ : denoise_seconds_).Observe(absl::ToDoubleSeconds(compute));
    (enc ? encode_batch_ : denoise_batch_).Observe(batch_size);
  }
  void OnTaskDone(core::TaskOutcome outcome, absl::Duration queue_time, absl::Duration) override {
    m_->tasks_.Add(With("outcome", core::TaskOutcomeName(outcome))).Increment();
    if (outcome == core::TaskOutcome::kOk || outcome == core::TaskOutcome::kFailed) {
      queue_seconds_.Observe(absl::ToDoubleSeconds(queue_time));
    } else {
      m_->dropped_.Add(With("reason", core::TaskOutcomeName(outcome))).Increment();
    }
  }

 private:
  std::map<std::string, std::string> With(const std::string& k, const std::string& v) const {
    auto l = labels_;
    l[k] = v;
    return l;
  }
  Metrics* m_;
  const std::map<std::string, std::string> labels_;
  prometheus::Gauge& queue_depth_;
  prometheus::Histogram& queue_seconds_;
  prometheus::Histogram& encode_seconds_;
  prometheus::Histogram& denoise_seconds_;
  prometheus::Histogram& encode_batch_;
  prometheus::Histogram& denoise_batch_;
};

Metrics::Metrics(const std::string& build_version)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(
          BuildCounter()
              .Name("invad_requests_total")
              .Help("Score calls and stream frames by model, version, method and status code.")
              .Register(*registry_)),
      request_seconds_(
          BuildHistogram()
              .Name("invad_request_duration_seconds")
              .Help("End-to-end time of a scored request in the server (decode to answer).")
              .Register(*registry_)),
      queue_seconds_(BuildHistogram()
                         .Name("invad_queue_duration_seconds")
                         .Help("Time a task waited for its first model call.")
                         .Register(*registry_)),
      compute_seconds_(BuildHistogram()
                           .Name("invad_model_call_duration_seconds")
                           .Help("Duration of one model call (encoder or one denoiser step).")
                           .Register(*registry_)),
      batch_size_(BuildHistogram()
                      .Name("invad_batch_size")
                      .Help("Images in one model call.")
                      .Register(*registry_)),
      queue_depth_(BuildGauge()
                       .Name("invad_queue_depth")
                       .Help("Tasks queued for a model version, not yet in a model call.")
                       .Register(*registry_)),
      queue_capacity_(BuildGauge()
                          .Name("invad_queue_capacity")
                          .Help("Tasks a model version queues before RESOURCE_EXHAUSTED.")
                          .Register(*registry_)),
      inflight_(BuildGauge()
                    .Name("invad_inflight_requests")
                    .Help("Score calls and stream frames accepted and not yet answered.")
                    .Register(*registry_)
                    .Add({})),
      dropped_(BuildCounter()
                   .Name("invad_dropped_tasks_total")
                   .Help("Tasks that never completed a model run, by reason (expired, cancelled, "
                         "shutdown, rejected_queue_full, rejected_admission, rejected_shutdown).")
                   .Register(*registry_)),
      tasks_(BuildCounter()
                 .Name("invad_tasks_total")
                 .Help("Tasks by outcome at the scheduler.")
                 .Register(*registry_)),
      model_ready_(BuildGauge()
                       .Name("invad_model_ready")
                       .Help("1 when the model version serves, else 0.")
                       .Register(*registry_)),
      anomalies_(BuildCounter()
                     .Name("invad_anomalies_total")
                     .Help("Images judged anomalous, by model.")
                     .Register(*registry_)),
      score_(BuildHistogram()
                 .Name("invad_score")
                 .Help("Calibrated anomaly scores by model (watch it for drift).")
                 .Register(*registry_)) {
  BuildGauge()
      .Name("invad_build_info")
      .Help("Always 1; labels carry the build.")
      .Register(*registry_)
      .Add({{"version", build_version}})
      .Set(1);
}

Metrics::~Metrics() = default;

absl::Status Metrics::StartExposer(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
    exposer_->RegisterCollectable(registry_);
    const std::vector<int> ports = exposer_->GetListeningPorts();
    exposer_port_ = ports.empty() ? 0 : ports.front();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics exposer on ", address, ": ", e.what()));
  }
  return absl::OkStatus();
}

std::unique_ptr<core::SchedulerObserver> Metrics::ObserverFor(const std::string& model, int version,
                                                              int queue_capacity) {
  queue_capacity_.Add({{"model", model}, {"version", std::to_string(version)}}).Set(queue_capacity);
  return std::make_unique<Observer>(this, model, version);
}

void Metrics::OnRequest(const std::string& model, int64_t version, const std::string& method,
                        absl::StatusCode code, absl::Duration total) {
  const std::string m = model.empty() ? "_unknown" : model;
  const std::string v = version > 0 ? std::to_string(version) : "";
  requests_.Add({{"model", m}, {"version", v}, {"method", method}, {"code", CodeName(code)}})
      .Increment();
  if (code == absl::StatusCode::kOk) {
    request_seconds_.Add({{"model", m}}, SecondsBuckets()).Observe(absl::ToDoubleSeconds(total));
  }
}

void Metrics::OnScored(const std::string& model, double score, bool anomalous) {
  score_.Add({{"model", model}}, ScoreBuckets()).Observe(score);
  auto& a = anomalies_.Add({{"model", model}});
  if (anomalous) a.Increment();
}

void Metrics::SetModelReady(const std::string& model, int version, bool ready) {
  model_ready_.Add({{"model", model}, {"version", std::to_string(version)}}).Set(ready ? 1 : 0);
}

void Metrics::RemoveModel(const std::string& model, int version) {
  const std::map<std::string, std::string> labels = {{"model", model},
                                                     {"version", std::to_string(version)}};
  if (model_ready_.Has(labels)) model_ready_.Remove(&model_ready_.Add(labels));
  if (queue_capacity_.Has(labels)) queue_capacity_.Remove(&queue_capacity_.Add(labels));
}

void Metrics::InflightAdd(int delta) { inflight_.Increment(delta); }

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace invad::server

// File: server/metrics.h
//
// invad-server's Prometheus metrics (prometheus-cpp), exposed on --metrics_address at /metrics.
// Every name and label is listed in docs/metrics.md; deploy files use only those. The core knows
// nothing of Prometheus: each served model version gets a core::SchedulerObserver from
// ObserverFor(), and the service reports requests through OnRequest()/OnScored().
//
// Note platform.md P3: the civetweb exposer needs server/stack_fix.cc linked into the binary.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

#include "core/batching/scheduler.h"

namespace invad::server {

class Metrics {
 public:
  explicit Metrics(const std::string& build_version);
  ~Metrics();

  // Serves /metrics on `address` (host:port; port 0 picks one). Unavailable if it cannot bind.
  absl::Status StartExposer(const std::string& address);
  int exposer_port() const { return exposer_port_; }

  // Hooks for one model version's scheduler (queue depth, calls, batch sizes, drops).
  // `queue_capacity`: its max_queue_size (invad_queue_capacity, the denominator of saturation).
  std::unique_ptr<core::SchedulerObserver> ObserverFor(const std::string& model, int version,
                                                       int queue_capacity);

  // One finished Score call or stream frame. `model`/`version`: as resolved ("" and 0 when the
  // request named no served model: the label is then "_unknown", so bad names cannot grow the
  // label set). `method`: "Score", "ScoreStream" or "ModelInfer".
  void OnRequest(const std::string& model, int64_t version, const std::string& method,
                 absl::StatusCode code, absl::Duration total);
  void OnScored(const std::string& model, double score, bool anomalous);
  void SetModelReady(const std::string& model, int version, bool ready);
  // A retired version: its invad_model_ready and invad_queue_capacity series go away.
  void RemoveModel(const std::string& model, int version);
  void InflightAdd(int delta);

  // The text exposition format, as /metrics answers (tests).
  std::string Serialize() const;

 private:
  class Observer;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int exposer_port_ = 0;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_seconds_;
  prometheus::Family<prometheus::Histogram>& queue_seconds_;
  prometheus::Family<prometheus::Histogram>& compute_seconds_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& queue_capacity_;
  prometheus::Gauge& inflight_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Family<prometheus::Counter>& tasks_;
  prometheus::Family<prometheus::Gauge>& model_ready_;
  prometheus::Family<prometheus::Counter>& anomalies_;
  prometheus::Family<prometheus::Histogram>& score_;
};

}  // namespace invad::server

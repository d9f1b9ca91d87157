// File: server/service.h
//
// invad.v1.AnomalyDetection over the gRPC callback API: handlers never block. Score and each
// ScoreStream frame go through StartScore (server/scoring.h) with the call's deadline and a
// cancellation flag the reactor sets in OnCancel.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"

#include "core/base/mutex.h"
#include "invad/v1/inference.grpc.pb.h"
#include "server/metrics.h"
#include "server/model_repository.h"
#include "server/scoring.h"

namespace invad::server {

struct ServiceOptions {
  ScoringLimits limits;
  // Unanswered frames per ScoreStream before the server stops reading (flow control).
  int max_stream_in_flight = 32;
  // Required `authorization: Bearer <token>` on every call of this service; "" = none.
  std::string bearer_token;
  std::string build_version = "dev";
  // Log every request (failed ones are always logged).
  bool log_requests = false;
};

// An open ScoreStream, as the service sees it when the server drains.
class DrainableStream {
 public:
  virtual ~DrainableStream() = default;
  // Keeps the stream object alive until Release() (it may finish meanwhile).
  virtual void Hold() = 0;
  virtual void Release() = 0;
  // Stop taking frames, answer those in flight, then end with UNAVAILABLE.
  virtual void BeginDrain() = 0;
};

class AnomalyDetectionService final : public v1::AnomalyDetection::CallbackService {
 public:
  // `metrics` may be null.
  AnomalyDetectionService(const ModelRepository* repo, ServiceOptions options, Metrics* metrics)
      : repo_(repo), options_(options), metrics_(metrics) {}

  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* ctx, const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;
  grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse>* ScoreStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* response) override;

  // A unary call that scores `request` (owned by the caller until `on_ok` or the call ends) and
  // answers through `on_ok` (fills the call's response) or with the error's code. Shared by
  // Score and KServe's ModelInfer; `method` labels metrics and logs.
  grpc::ServerUnaryReactor* StartUnary(grpc::CallbackServerContext* ctx, const char* method,
                                       std::shared_ptr<const v1::ScoreRequest> request,
                                       std::function<void(v1::ScoreResponse)> on_ok);

  const ModelRepository& repo() const { return *repo_; }
  const ServiceOptions& options() const { return options_; }

  // Metrics of one finished request (a Score call or a stream frame).
  void Record(const std::string& method, const v1::ScoreRequest& request,
              const absl::Status& status, const v1::ScoreResponse* response, absl::Time received);
  void Accepted() {
    if (metrics_) metrics_->InflightAdd(1);
  }

  // Server drain: new calls (Score, ModelInfer) and ScoreStreams are refused with UNAVAILABLE
  // (retryable: another replica may serve them); open streams stop reading, answer
  // the frames they hold, then end with UNAVAILABLE ("server draining"), so a client reconnects to
  // another replica without losing a frame and Shutdown does not wait out its grace on them.
  void BeginDrain();
  // StreamReactor bookkeeping: false (and not added) once draining.
  bool AddStream(DrainableStream* s);
  void RemoveStream(DrainableStream* s);

 private:
  const ModelRepository* repo_;
  const ServiceOptions options_;
  Metrics* const metrics_;
  core::Mutex streams_mu_;
  absl::flat_hash_set<DrainableStream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;
  std::atomic<bool> refusing_{false};  // set by BeginDrain; read on every call
};

}  // namespace invad::server

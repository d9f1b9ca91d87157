#include "server/service.h"

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "core/base/mutex.h"
#include "server/auth.h"
#include "server/log.h"
#include "server/status.h"

namespace invad::server {
namespace {

absl::Time Deadline(const grpc::CallbackServerContext* ctx) {
  const auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

// A unary scoring call: finishes from the scheduler's callback; OnCancel marks the task cancelled
// so the scheduler drops it before its next model call.
class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  UnaryReactor(AnomalyDetectionService* service, grpc::CallbackServerContext* ctx,
               const char* method, std::shared_ptr<const v1::ScoreRequest> request,
               std::function<void(v1::ScoreResponse)> on_ok)
      : cancelled_(std::make_shared<std::atomic<bool>>(false)) {
    const absl::Time received = absl::Now();
    service->Accepted();
    absl::Status s = StartScore(
        service->repo(), *request, service->options().limits, Deadline(ctx), cancelled_, received,
        [this, service, method, request, on_ok = std::move(on_ok),
         received](absl::StatusOr<v1::ScoreResponse> r) {
          service->Record(method, *request, r.status(), r.ok() ? &*r : nullptr, received);
          if (!r.ok()) return Finish(ToGrpcStatus(r.status()));
          on_ok(*std::move(r));
          Finish(grpc::Status::OK);
        });
    if (!s.ok()) {
      service->Record(method, *request, s, nullptr, received);
      Finish(ToGrpcStatus(s));
    }
  }
  void OnCancel() override { cancelled_->store(true); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

// ScoreStream: frames are scored concurrently (they batch together) and answered in arrival
// order. At most max_stream_in_flight frames are unanswered; beyond that the reactor stops
// reading, so a fast producer is held back by HTTP/2 flow control instead of server memory.
// On a server drain it stops reading, answers what it holds and ends with UNAVAILABLE.
class StreamReactor final : public grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse>,
                            public DrainableStream {
 public:
  StreamReactor(AnomalyDetectionService* service, grpc::CallbackServerContext* ctx)
      : service_(service), ctx_(ctx), cancelled_(std::make_shared<std::atomic<bool>>(false)) {
    registered_ = service_->AddStream(this);
    if (!registered_) {
      {
        core::MutexLock l(&mu_);
        finished_ = true;
      }
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server draining"));
      return;
    }
    StartRead(&request_);
  }

  void Hold() override {
    core::MutexLock l(&mu_);
    ++outstanding_;
  }
  void Release() override {
    bool last;
    {
      core::MutexLock l(&mu_);
      --outstanding_;
      last = done_ && outstanding_ == 0;
    }
    if (last) delete this;
  }
  void BeginDrain() override {
    {
      core::MutexLock l(&mu_);
      draining_ = true;
    }
    Pump();
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      core::MutexLock l(&mu_);
      ok = !finished_;  // a frame that raced the end of the stream is not taken
    }
    if (!ok) {
      {
        core::MutexLock l(&mu_);
        reads_done_ = true;
      }
      Pump();
      return;
    }
    const absl::Time received = absl::Now();
    std::shared_ptr<Frame> frame;
    {
      core::MutexLock l(&mu_);
      frame = std::make_shared<Frame>();
      frame->request.set_model(request_.model());
      frame->request.set_version(request_.version());
      *frame->request.mutable_correlation() = request_.correlation();
      frame->received = received;
      frame->response.set_sequence(next_sequence_++);
      *frame->response.mutable_correlation() = request_.correlation();
      frames_.push_back(frame);
      ++outstanding_;
    }
    service_->Accepted();
    absl::Status s = StartScore(
        service_->repo(), request_, service_->options().limits, Deadline(ctx_), cancelled_,
        received,
        [this, frame](absl::StatusOr<v1::ScoreResponse> r) { Complete(*frame, std::move(r)); });
    if (!s.ok()) Complete(*frame, s);
    bool read_more;
    {
      core::MutexLock l(&mu_);
      read_more = static_cast<int>(frames_.size()) < service_->options().max_stream_in_flight;
      read_paused_ = !read_more;
      if (draining_) {  // the frame read while the drain began is answered; no more are read
        read_more = false;
        reads_done_ = true;
      }
    }
    if (read_more) StartRead(&request_);
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      core::MutexLock l(&mu_);
      writing_ = false;
      frames_.pop_front();
      if (!ok) broken_ = true;
    }
    Pump();
  }

  void OnCancel() override { cancelled_->store(true); }

  void OnDone() override {
    if (registered_) service_->RemoveStream(this);
    bool last;
    {
      core::MutexLock l(&mu_);
      done_ = true;
      last = outstanding_ == 0;
    }
    if (last) delete this;
  }

 private:
  struct Frame {
    bool ready = false;
    v1::ScoreRequest request;  // model and version only, for metrics
    absl::Time received;
    v1::ScoreResponse response;
  };

  void Complete(Frame& frame, absl::StatusOr<v1::ScoreResponse> r) {
    service_->Record("ScoreStream", frame.request, r.status(), r.ok() ? &*r : nullptr,
                     frame.received);
    bool last;
    {
      core::MutexLock l(&mu_);
      const uint64_t sequence = frame.response.sequence();
      if (r.ok()) {
        frame.response = *std::move(r);
        frame.response.set_sequence(sequence);
      } else {
        frame.response.mutable_error()->set_code(static_cast<int>(r.status().code()));
        frame.response.mutable_error()->set_message(std::string(r.status().message()));
      }
      frame.ready = true;
      --outstanding_;
      last = done_ && outstanding_ == 0;
    }
    if (last) {
      delete this;
      return;
    }
    Pump();
  }

  // Starts the next in-order write, resumes reading, or finishes; the gRPC calls happen outside
  // the lock.
  void Pump() {
    const v1::ScoreResponse* write = nullptr;
    bool resume_read = false, finish = false;
    grpc::Status end = grpc::Status::OK;
    {
      core::MutexLock l(&mu_);
      if (done_ || finished_) return;
      if (broken_) {
        finished_ = true;
        finish = true;
      } else if (draining_ && frames_.empty() && !writing_) {
        finished_ = true;
        finish = true;
        end = grpc::Status(grpc::StatusCode::UNAVAILABLE, "server draining");
      } else {
        if (!writing_ && !frames_.empty() && frames_.front()->ready) {
          writing_ = true;
          write = &frames_.front()->response;
        }
        if (read_paused_ && !reads_done_ && !draining_ &&
            static_cast<int>(frames_.size()) < service_->options().max_stream_in_flight) {
          read_paused_ = false;
          resume_read = true;
        }
        if (reads_done_ && frames_.empty() && !writing_) {
          finished_ = true;
          finish = true;
        }
      }
    }
    if (write != nullptr) StartWrite(write);
    if (resume_read) StartRead(&request_);
    if (finish) {
      cancelled_->store(true);  // frames still queued are of no use to anyone now
      Finish(end);
    }
  }

  AnomalyDetectionService* service_;
  grpc::CallbackServerContext* ctx_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  v1::ScoreRequest request_;  // the read buffer; only touched between StartRead and OnReadDone
  core::Mutex mu_;
  std::deque<std::shared_ptr<Frame>> frames_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // frames whose scoring has not completed
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ = false;  // set in the constructor only
};

}  // namespace

void AnomalyDetectionService::BeginDrain() {
  refusing_.store(true);
  std::vector<DrainableStream*> open;
  {
    core::MutexLock l(&streams_mu_);
    draining_ = true;
    for (DrainableStream* s : streams_) {
      s->Hold();  // alive until Release(), even if it finishes meanwhile
      open.push_back(s);
    }
  }
  for (DrainableStream* s : open) {
    s->BeginDrain();
    s->Release();
  }
}

bool AnomalyDetectionService::AddStream(DrainableStream* s) {
  core::MutexLock l(&streams_mu_);
  if (draining_) return false;
  streams_.insert(s);
  return true;
}

void AnomalyDetectionService::RemoveStream(DrainableStream* s) {
  core::MutexLock l(&streams_mu_);
  streams_.erase(s);
}

void AnomalyDetectionService::Record(const std::string& method, const v1::ScoreRequest& request,
                                     const absl::Status& status, const v1::ScoreResponse* response,
                                     absl::Time received) {
  // Failures are logged, except the load-related ones (queue full, expired, cancelled): those are
  // counted by metrics and would flood the log exactly when the server is busiest.
  const absl::StatusCode code = status.code();
  const bool load_related = code == absl::StatusCode::kResourceExhausted ||
                            code == absl::StatusCode::kDeadlineExceeded ||
                            code == absl::StatusCode::kCancelled;
  if ((!status.ok() && !load_related) || options_.log_requests) {
    const v1::Correlation& c = request.correlation();
    const bool internal =
        status.code() == absl::StatusCode::kInternal || status.code() == absl::StatusCode::kUnknown;
    Log(status.ok() ? "info" : (internal ? "error" : "warning"), "request",
        {{"method", method},
         {"model", request.model()},
         {"version", request.version() > 0 ? std::to_string(request.version()) : ""},
         {"code", absl::StatusCodeToString(status.code())},
         {"request_id", c.request_id()},
         {"camera_id", c.camera_id()},
         {"frame_id", c.frame_id()},
         {"score", response != nullptr ? absl::StrCat(response->score()) : ""},
         {"total_us", absl::StrCat(absl::ToInt64Microseconds(absl::Now() - received))},
         {"error", std::string(status.message())}});
  }
  if (metrics_ == nullptr) return;
  metrics_->InflightAdd(-1);
  if (response != nullptr) {
    metrics_->OnRequest(response->model(), response->version(), method, status.code(),
                        absl::Now() - received);
    metrics_->OnScored(response->model(), response->score(), response->anomalous());
    return;
  }
  // Label only names the repository knows, so bad requests cannot grow the label set.
  // The version label is the one the request resolved to (a queue-full refusal of "latest" counts
  // against the version that refused it).
  const bool known = repo_->HasModel(request.model());
  int64_t version = known ? request.version() : 0;
  if (known) {
    absl::StatusOr<std::shared_ptr<ServedModel>> m = repo_->Find(request.model(), version);
    if (m.ok()) version = (*m)->version;
  }
  metrics_->OnRequest(known ? request.model() : "", version, method, status.code(),
                      absl::Now() - received);
}

namespace {

// A stream refused before it starts (authentication).
class RejectedStream final : public grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse> {
 public:
  explicit RejectedStream(const absl::Status& s) { Finish(ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(s));
  return r;
}

}  // namespace

grpc::ServerUnaryReactor* AnomalyDetectionService::StartUnary(
    grpc::CallbackServerContext* ctx, const char* method,
    std::shared_ptr<const v1::ScoreRequest> request, std::function<void(v1::ScoreResponse)> on_ok) {
  if (refusing_.load(std::memory_order_relaxed)) {  // draining: another replica may serve it
    return FinishWith(ctx, absl::UnavailableError("server draining"));
  }
  return new UnaryReactor(this, ctx, method, std::move(request), std::move(on_ok));
}

grpc::ServerUnaryReactor* AnomalyDetectionService::Score(grpc::CallbackServerContext* ctx,
                                                         const v1::ScoreRequest* request,
                                                         v1::ScoreResponse* response) {
  if (absl::Status s = CheckBearerToken(*ctx, options_.bearer_token); !s.ok()) {
    return FinishWith(ctx, s);
  }
  // The request outlives the call, so it is borrowed, not copied.
  return StartUnary(
      ctx, "Score",
      std::shared_ptr<const v1::ScoreRequest>(request, [](const v1::ScoreRequest*) {}),
      [response](v1::ScoreResponse r) { *response = std::move(r); });
}

grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse>* AnomalyDetectionService::ScoreStream(
    grpc::CallbackServerContext* ctx) {
  if (absl::Status s = CheckBearerToken(*ctx, options_.bearer_token); !s.ok()) {
    return new RejectedStream(s);
  }
  return new StreamReactor(this, ctx);
}

grpc::ServerUnaryReactor* AnomalyDetectionService::ListModels(grpc::CallbackServerContext* ctx,
                                                              const v1::ListModelsRequest*,
                                                              v1::ListModelsResponse* response) {
  if (absl::Status s = CheckBearerToken(*ctx, options_.bearer_token); !s.ok()) {
    return FinishWith(ctx, s);
  }
  *response = repo_->List();
  return FinishWith(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AnomalyDetectionService::GetModel(grpc::CallbackServerContext* ctx,
                                                            const v1::GetModelRequest* request,
                                                            v1::ModelInfo* response) {
  if (absl::Status s = CheckBearerToken(*ctx, options_.bearer_token); !s.ok()) {
    return FinishWith(ctx, s);
  }
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  absl::StatusOr<v1::ModelInfo> info = repo_->Get(request->model(), request->version());
  if (info.ok()) *response = *std::move(info);
  r->Finish(ToGrpcStatus(info.status()));
  return r;
}

}  // namespace invad::server

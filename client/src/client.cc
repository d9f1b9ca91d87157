#include "invad/client/client.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

#include "client/src/testing_hooks.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "invad/v1/inference.grpc.pb.h"

namespace invad::client {
namespace {

std::atomic<internal::ReopenHook> g_after_reopen{nullptr};

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.3fs", absl::ToDoubleSeconds(d)); }

// Round-robin over every address of the target, and bounded retries of UNAVAILABLE (never
// RESOURCE_EXHAUSTED: a full queue is the server asking for less load).
// Retried: UNAVAILABLE (draining, restarting, not ready) and CANCELLED sent by a server (a call
// that raced its shutdown: gRPC cancels it). Scoring has no side effects, so a second attempt is
// safe; a call this client cancelled is never retried (gRPC commits it). RESOURCE_EXHAUSTED never
// is.
std::string ServiceConfig(const ClientOptions& o) {
  std::string retry;
  if (o.max_attempts > 1) {
    retry = absl::StrCat(
        R"(,"retryPolicy":{"maxAttempts":)", o.max_attempts, R"(,"initialBackoff":")",
        Seconds(o.initial_backoff), R"(","maxBackoff":")", Seconds(o.max_backoff),
        R"(","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE","CANCELLED"]})");
  }
  // ScoreStream is never retried by gRPC: a transparently retried stream replays its buffered
  // frames, and gRPC 1.51 then stalled later writes (frames written, never sent). StreamSession
  // reopens streams itself (StreamOptions::reconnect_attempts).
  return absl::StrCat(
      R"({"loadBalancingConfig":[{"round_robin":{}}],"methodConfig":[{"name":[)",
      R"({"service":"invad.v1.AnomalyDetection"},{"service":"inference.GRPCInferenceService"}])",
      retry, R"(},{"name":[{"service":"invad.v1.AnomalyDetection","method":"ScoreStream"}]}]})");
}

v1::ScoreRequest ToRequest(const Image& image, const ScoreOptions& o) {
  v1::ScoreRequest r;
  r.set_model(o.model);
  r.set_version(o.version);
  r.set_category(o.category);
  r.set_steps(o.steps);
  if (o.threshold) r.set_threshold(*o.threshold);
  r.set_map(static_cast<v1::MapKind>(o.map));
  if (o.region) {
    r.mutable_region()->set_x(o.region->x);
    r.mutable_region()->set_y(o.region->y);
    r.mutable_region()->set_width(o.region->width);
    r.mutable_region()->set_height(o.region->height);
  }
  if (o.tiling) {
    r.mutable_tiling()->set_enabled(true);
    r.mutable_tiling()->set_tile_size(o.tile_size);
    r.mutable_tiling()->set_overlap(o.tile_overlap);
  }
  v1::Correlation* c = r.mutable_correlation();
  c->set_request_id(o.ids.request_id);
  c->set_camera_id(o.ids.camera_id);
  c->set_frame_id(o.ids.frame_id);
  c->set_capture_time_unix_ns(o.ids.capture_time_unix_ns);
  c->set_trigger_count(o.ids.trigger_count);
  if (!image.encoded.empty()) {
    r.mutable_image()->set_encoded(image.encoded);
  } else {
    v1::RawImage* raw = r.mutable_image()->mutable_raw();
    raw->set_width(image.width);
    raw->set_height(image.height);
    raw->set_channels(image.channels);
    raw->set_pixel_type(image.bits == 16 ? v1::UINT16 : v1::UINT8);
    raw->set_row_stride(image.row_stride);
    raw->set_order(image.order == PixelOrder::kBgr    ? v1::BGR
                   : image.order == PixelOrder::kGray ? v1::GRAY
                                                      : v1::RGB);
    raw->set_data(image.pixels);
  }
  return r;
}

ScoreResult FromResponse(const v1::ScoreResponse& p) {
  ScoreResult r;
  r.score = p.score();
  r.anomalous = p.anomalous();
  r.threshold = p.threshold();
  r.sq_norm_term = p.sq_norm_term();
  r.diff_term = p.diff_term();
  r.sq_norm = p.sq_norm();
  r.diff = p.diff();
  r.max_norm_term = p.max_norm_term();
  r.max_norm = p.max_norm();
  r.positional_max_term = p.positional_max_term();
  r.positional_max = p.positional_max();
  r.score_rule = p.score_rule();
  for (const v1::DefectRegion& d : p.regions()) {
    r.regions.push_back(
        {{d.box().x(), d.box().y(), d.box().width(), d.box().height()}, d.area(), d.peak()});
  }
  r.map_width = p.map().width();
  r.map_height = p.map().height();
  r.map.assign(p.map().values().begin(), p.map().values().end());
  r.map_png = p.map_png();
  r.model = p.model();
  r.version = p.version();
  r.steps = p.steps();
  r.tiles = p.tiles();
  r.queue_time = absl::Microseconds(p.timings().queue_us());
  r.compute_time = absl::Microseconds(p.timings().compute_us());
  r.server_time = absl::Microseconds(p.timings().total_us());
  r.batch_sizes.assign(p.batch_sizes().begin(), p.batch_sizes().end());
  const v1::Correlation& c = p.correlation();
  r.ids = {c.request_id(), c.camera_id(), c.frame_id(), c.capture_time_unix_ns(),
           c.trigger_count()};
  return r;
}

// ---------------------------------------------------------------------------------------------

// Frames flow through one gRPC stream at a time (a Conn); with reconnect_attempts, a stream that
// ends with UNAVAILABLE is replaced: frames it had sent but not answered complete with UNAVAILABLE,
// frames not yet sent go on the next one. The writer thread owns the Conn and replaces it.
class Stream final : public StreamSession {
 public:
  Stream(v1::AnomalyDetection::Stub* stub, const ClientOptions& copts, const StreamOptions& o)
      : stub_(stub), token_(copts.bearer_token), options_(o), deadline_(absl::Now() + o.deadline) {
    conn_ = Open();
    writer_ = std::thread([this] { WriteLoop(); });
  }
  ~Stream() override {
    if (!finished_) {
      {
        std::lock_guard<std::mutex> l(mu_);
        cancelled_ = true;
        if (conn_) conn_->ctx.TryCancel();
      }
      (void)Finish();
    }
  }

  bool Send(const Image& image, const Correlation& ids) override {
    std::unique_lock<std::mutex> l(mu_);
    if (closing_ || failed_) return false;
    while (InFlightLocked() >= options_.max_in_flight && !failed_) {
      if (options_.overload == OverloadPolicy::kDropOldest && DropOldestUnsentLocked()) break;
      room_.wait(l);
    }
    if (failed_) return false;
    auto slot = std::make_shared<Slot>();
    slot->sequence = next_sequence_++;
    slot->frame_id = ids.frame_id;
    ScoreOptions so = options_.defaults;
    so.ids = ids;
    slot->request = ToRequest(image, so);
    slots_.push_back(slot);
    unsent_.push_back(slot);
    work_.notify_all();
    return true;
  }

  std::optional<FrameResult> Next() override {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      if (!slots_.empty() && slots_.front()->state != Slot::kPending &&
          slots_.front()->state != Slot::kSent) {
        std::shared_ptr<Slot> s = slots_.front();
        slots_.pop_front();
        room_.notify_all();
        FrameResult r;
        r.frame_id = s->frame_id;
        r.sequence = s->sequence;
        r.dropped = s->state == Slot::kDropped;
        r.result = r.dropped ? absl::StatusOr<ScoreResult>(absl::ResourceExhaustedError(
                                   "dropped by the client's overload policy"))
                             : std::move(s->result);
        return r;
      }
      if (failed_ || (closing_ && slots_.empty())) return std::nullopt;
      ready_.wait(l);
    }
  }

  absl::Status Finish() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finished_) return final_;
      closing_ = true;
      work_.notify_all();
    }
    writer_.join();
    if (conn_ && conn_->reader.joinable()) conn_->reader.join();
    std::lock_guard<std::mutex> l(mu_);
    finished_ = true;
    return final_;
  }

  int64_t dropped() const override {
    std::lock_guard<std::mutex> l(mu_);
    return dropped_;
  }
  int64_t reconnects() const override {
    std::lock_guard<std::mutex> l(mu_);
    return reconnects_;
  }

 private:
  struct Slot {
    enum State { kPending, kSent, kDone, kDropped };
    State state = kPending;
    uint64_t sequence = 0;
    std::string frame_id;
    v1::ScoreRequest request;
    absl::StatusOr<ScoreResult> result = absl::UnknownError("no result");
  };
  struct Conn {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::ScoreRequest, v1::ScoreResponse>> rw;
    std::thread reader;
  };

  std::unique_ptr<Conn> Open() {
    auto c = std::make_unique<Conn>();
    if (!token_.empty()) c->ctx.AddMetadata("authorization", "Bearer " + token_);
    c->ctx.set_deadline(absl::ToChronoTime(deadline_));
    c->rw = stub_->ScoreStream(&c->ctx);
    Conn* raw = c.get();
    c->reader = std::thread([this, raw] { ReadLoop(raw); });
    return c;
  }

  int InFlightLocked() const {
    int n = 0;
    for (const auto& s : slots_) n += s->state == Slot::kPending || s->state == Slot::kSent;
    return n;
  }
  bool DropOldestUnsentLocked() {
    while (!unsent_.empty()) {
      std::shared_ptr<Slot> s = unsent_.front();
      unsent_.pop_front();
      if (s->state != Slot::kPending) continue;
      s->state = Slot::kDropped;
      s->request.Clear();
      ++dropped_;
      ready_.notify_all();
      return true;
    }
    return false;
  }

  void WriteLoop() {
    Conn* c = conn_.get();
    for (;;) {
      std::shared_ptr<Slot> s;
      {
        std::unique_lock<std::mutex> l(mu_);
        work_.wait(l, [&] { return failed_ || broken_ || closing_ || !unsent_.empty(); });
        while (!unsent_.empty() && unsent_.front()->state != Slot::kPending) unsent_.pop_front();
        if (failed_) break;
        if (broken_) {
          // The reader of `c` has ended (setting broken_ was its last act): wait, then reopen.
          l.unlock();
          c->reader.join();
          l.lock();
          const absl::Duration wait = std::min(
              absl::Milliseconds(100) * (1 << std::min(attempts_ - 1, 6)), absl::Seconds(5));
          work_.wait_for(l, absl::ToChronoNanoseconds(wait),
                         [&] { return cancelled_ || (closing_ && unsent_.empty()); });
          if (cancelled_ || (closing_ && unsent_.empty())) {
            failed_ = true;  // nothing left to send on a new stream
            final_ = last_break_;
            ready_.notify_all();
            room_.notify_all();
            return;
          }
          // Cleared before the new reader exists: if the new stream breaks at once, the break
          // its reader reports must survive (clearing it after Open() lost it, and the writer
          // then waited for a break that had already happened).
          broken_ = false;
          l.unlock();
          std::unique_ptr<Conn> next = Open();
          if (internal::ReopenHook hook = g_after_reopen.load()) hook();
          l.lock();
          conn_.swap(next);
          c = conn_.get();
          ++reconnects_;
          l.unlock();
          next.reset();  // the old stream; its reader was joined above
          continue;
        }
        if (unsent_.empty()) {
          if (closing_) break;
          continue;
        }
        s = unsent_.front();
        unsent_.pop_front();
        s->state = Slot::kSent;
        sent_.push_back(s);
      }
      if (!c->rw->Write(s->request)) {
        // The stream is gone; its reader reports how (and whether to reconnect).
        std::unique_lock<std::mutex> l(mu_);
        work_.wait(l, [&] { return failed_ || broken_; });
        continue;
      }
      std::lock_guard<std::mutex> l(mu_);
      s->request.Clear();
    }
    c->rw->WritesDone();
  }

  void ReadLoop(Conn* c) {
    v1::ScoreResponse resp;
    while (c->rw->Read(&resp)) {
      std::lock_guard<std::mutex> l(mu_);
      if (sent_.empty()) break;  // protocol violation: more answers than frames
      std::shared_ptr<Slot> s = sent_.front();
      sent_.pop_front();
      if (resp.has_error()) {
        s->result = absl::Status(static_cast<absl::StatusCode>(resp.error().code()),
                                 resp.error().message());
      } else {
        s->result = FromResponse(resp);
      }
      s->state = Slot::kDone;
      attempts_ = 0;  // this stream works: a later break starts the backoff afresh
      ready_.notify_all();
      room_.notify_all();  // an answered frame is no longer in flight: a blocked Send may go on
    }
    const absl::Status st = FromGrpc(c->rw->Finish());
    std::lock_guard<std::mutex> l(mu_);
    if (st.ok() && sent_.empty()) {
      final_ = st;  // the end after WritesDone: every frame answered
    } else if (absl::IsUnavailable(st) && attempts_ < options_.reconnect_attempts && !cancelled_ &&
               !(closing_ && unsent_.empty())) {
      // Server drained or restarted: frames it never answered fail; the rest go on a new stream.
      ++attempts_;
      last_break_ = st;
      for (auto& s : sent_) {
        s->result = absl::UnavailableError(
            absl::StrCat("the stream broke before this frame was answered: ", st.message()));
        s->state = Slot::kDone;
      }
      sent_.clear();
      broken_ = true;
    } else {
      failed_ = true;
      final_ = st.ok() ? absl::InternalError("the stream ended with frames unanswered") : st;
      for (auto& s : slots_) {  // whatever was never answered fails with the stream's status
        if (s->state == Slot::kPending || s->state == Slot::kSent) {
          s->result = final_;
          s->state = Slot::kDone;
        }
      }
    }
    ready_.notify_all();
    room_.notify_all();
    work_.notify_all();
  }

  v1::AnomalyDetection::Stub* const stub_;
  const std::string token_;
  const StreamOptions options_;
  const absl::Time deadline_;   // of the whole session, across reconnects
  std::unique_ptr<Conn> conn_;  // replaced by the writer only; read by the destructor
  mutable std::mutex mu_;
  std::condition_variable room_, ready_, work_;
  std::deque<std::shared_ptr<Slot>> slots_;   // every frame not yet returned by Next(), in order
  std::deque<std::shared_ptr<Slot>> unsent_;  // queued for the writer
  std::deque<std::shared_ptr<Slot>> sent_;    // written on the current stream, awaiting answers
  uint64_t next_sequence_ = 0;
  int64_t dropped_ = 0;
  int64_t reconnects_ = 0;
  int attempts_ = 0;  // consecutive breaks without an answer in between
  bool closing_ = false, failed_ = false, finished_ = false, broken_ = false, cancelled_ = false;
  absl::Status final_, last_break_;
  std::thread writer_;
};

// ---------------------------------------------------------------------------------------------

class ClientImpl final : public Client {
 public:
  ClientImpl(ClientOptions o, std::shared_ptr<grpc::Channel> channel)
      : options_(std::move(o)),
        channel_(std::move(channel)),
        stub_(v1::AnomalyDetection::NewStub(channel_)),
        health_(grpc::health::v1::Health::NewStub(channel_)) {}
  // Waits until every ScoreAsync callback has returned and its call is destroyed: a program that
  // destroys its client (or exits) right after its last answer arrived must not tear down what a
  // gRPC thread is still inside (invad bench crashed with SIGSEGV at exit that way). Unanswered
  // calls end at their deadline; cancel them first to hurry.
  ~ClientImpl() override {
    std::unique_lock<std::mutex> l(async_mu_);
    async_idle_.wait(l, [&] { return async_calls_ == 0; });
  }

  absl::StatusOr<ScoreResult> Score(const Image& image, const ScoreOptions& o) override {
    grpc::ClientContext ctx;
    Prepare(&ctx, o.deadline);
    v1::ScoreResponse resp;
    grpc::Status s = stub_->Score(&ctx, ToRequest(image, o), &resp);
    if (!s.ok()) return FromGrpc(s);
    return FromResponse(resp);
  }

  std::shared_ptr<PendingCall> ScoreAsync(
      const Image& image, const ScoreOptions& o,
      std::function<void(absl::StatusOr<ScoreResult>)> done) override {
    class Call final : public PendingCall {
     public:
      grpc::ClientContext ctx;
      v1::ScoreRequest req;
      v1::ScoreResponse resp;
      std::function<void(absl::StatusOr<ScoreResult>)> done;
      std::mutex mu;
      bool finished = false;
      std::shared_ptr<Call> self;
      void Cancel() override {
        std::lock_guard<std::mutex> l(mu);
        if (!finished) ctx.TryCancel();
      }
    };
    auto call = std::make_shared<Call>();
    Prepare(&call->ctx, o.deadline);
    call->req = ToRequest(image, o);
    call->done = std::move(done);
    // The call keeps itself alive until its callback ends; the callback drops that reference at
    // its very end, so the context is never destroyed inside gRPC's own teardown of the lambda.
    call->self = call;
    Call* raw = call.get();
    {
      std::lock_guard<std::mutex> l(async_mu_);
      ++async_calls_;
    }
    stub_->async()->Score(&raw->ctx, &raw->req, &raw->resp, [this, raw](grpc::Status s) {
      {
        std::lock_guard<std::mutex> l(raw->mu);
        raw->finished = true;
      }
      if (s.ok()) {
        raw->done(FromResponse(raw->resp));
      } else {
        raw->done(FromGrpc(s));
      }
      raw->done = nullptr;
      std::shared_ptr<Call> last = std::move(raw->self);
      last.reset();  // may delete the call here, before the client may go
      std::lock_guard<std::mutex> l(async_mu_);
      if (--async_calls_ == 0) async_idle_.notify_all();
    });
    return call;
  }

  absl::StatusOr<std::unique_ptr<StreamSession>> OpenStream(const StreamOptions& o) override {
    if (o.max_in_flight < 1) return absl::InvalidArgumentError("max_in_flight must be >= 1");
    if (o.defaults.model.empty()) return absl::InvalidArgumentError("defaults.model is required");
    return std::unique_ptr<StreamSession>(new Stream(stub_.get(), options_, o));
  }

  absl::StatusOr<HealthStatus> Health(const std::string& service) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.default_deadline));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health_->Check(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) return HealthStatus::kServiceUnknown;
    if (!s.ok()) return FromGrpc(s);
    switch (resp.status()) {
      case grpc::health::v1::HealthCheckResponse::SERVING:
        return HealthStatus::kServing;
      case grpc::health::v1::HealthCheckResponse::NOT_SERVING:
        return HealthStatus::kNotServing;
      case grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN:
        return HealthStatus::kServiceUnknown;
      default:
        return HealthStatus::kUnknown;
    }
  }

  absl::StatusOr<std::vector<ModelDescription>> ListModels() override {
    grpc::ClientContext ctx;
    Prepare(&ctx, absl::ZeroDuration());
    v1::ListModelsResponse resp;
    grpc::Status s = stub_->ListModels(&ctx, v1::ListModelsRequest(), &resp);
    if (!s.ok()) return FromGrpc(s);
    std::vector<ModelDescription> out;
    for (const v1::ModelInfo& m : resp.models()) {
      ModelDescription d;
      d.name = m.name();
      for (const v1::VersionInfo& v : m.versions()) {
        ModelVersion mv;
        mv.version = v.version();
        mv.state = v1::VersionInfo::State_Name(v.state());
        mv.error = v.error();
        mv.input_width = v.input_width();
        mv.input_height = v.input_height();
        mv.input_channels = v.input_channels();
        mv.allowed_steps.assign(v.allowed_steps().begin(), v.allowed_steps().end());
        mv.default_steps = v.default_steps();
        mv.categories.assign(v.categories().begin(), v.categories().end());
        for (const v1::CalibrationSummary& c : v.calibration()) {
          mv.calibration.push_back({c.steps(), c.category(), c.image_threshold(),
                                    c.pixel_threshold(), c.target_fpr(), c.fpr_resolution(),
                                    c.num_images(), c.score_rule()});
        }
        mv.device = v.device();
        mv.precision = v.precision();
        mv.description = v.description();
        d.versions.push_back(std::move(mv));
      }
      out.push_back(std::move(d));
    }
    return out;
  }

 private:
  void Prepare(grpc::ClientContext* ctx, absl::Duration deadline) const {
    const absl::Duration d = deadline > absl::ZeroDuration() ? deadline : options_.default_deadline;
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
    if (!options_.bearer_token.empty()) {
      ctx->AddMetadata("authorization", "Bearer " + options_.bearer_token);
    }
  }

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AnomalyDetection::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::mutex async_mu_;
  std::condition_variable async_idle_;
  int64_t async_calls_ = 0;  // ScoreAsync calls whose callback has not finished
};

}  // namespace

Image Image::Encoded(std::string bytes) {
  Image i;
  i.encoded = std::move(bytes);
  return i;
}

Image Image::Raw(int width, int height, int channels, std::string pixels, PixelOrder order,
                 int bits, int64_t row_stride) {
  Image i;
  i.width = width;
  i.height = height;
  i.channels = channels;
  i.pixels = std::move(pixels);
  i.order = order;
  i.bits = bits;
  i.row_stride = row_stride;
  return i;
}

const char* HealthStatusName(HealthStatus s) {
  switch (s) {
    case HealthStatus::kServing:
      return "SERVING";
    case HealthStatus::kNotServing:
      return "NOT_SERVING";
    case HealthStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case HealthStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& o) {
  if (o.target.empty()) return absl::InvalidArgumentError("target is required");
  if (o.max_attempts < 1 || o.max_attempts > 5) {
    return absl::InvalidArgumentError("max_attempts must be in [1, 5]");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(o.max_message_bytes);
  args.SetMaxSendMessageSize(o.max_message_bytes);
  if (o.keepalive_time > absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_time)));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  }
  args.SetServiceConfigJSON(ServiceConfig(o));
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!o.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadFile(o.tls_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(o.tls_cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(o.tls_key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  } else {
    if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
      return absl::InvalidArgumentError("a client certificate needs tls_ca_file (TLS) too");
    }
    creds = grpc::InsecureChannelCredentials();
  }
  auto channel = grpc::CreateCustomChannel(o.target, creds, args);
  if (channel == nullptr)
    return absl::InvalidArgumentError("cannot create a channel to " + o.target);
  return std::unique_ptr<Client>(new ClientImpl(o, std::move(channel)));
}

namespace internal {
void SetAfterReopenHookForTesting(ReopenHook hook) { g_after_reopen.store(hook); }
}  // namespace internal

}  // namespace invad::client

// File: client/include/invad/client/client.h
//
// The invad client SDK: what line software links to score images on an invad-server. Depends on
// gRPC and Abseil only; no generated protobuf types appear in this header.
//
//   invad::client::ClientOptions o;
//   o.target = "dns:///invad.factory.svc:50051";   // headless Service: round-robin over pods
//   auto client = invad::client::Client::Create(o);
//   invad::client::ScoreOptions s;
//   s.model = "bolts";
//   s.ids.camera_id = "cam-3";
//   absl::StatusOr<invad::client::ScoreResult> r =
//       (*client)->Score(invad::client::Image::Encoded(png_bytes), s);
//   if (r.ok() && r->anomalous) reject_part();
//
// Errors keep the server's code (docs/contracts.md). UNAVAILABLE (draining, restarting, not
// ready) is retried by gRPC itself with bounded exponential backoff (the channel's service
// config); RESOURCE_EXHAUSTED (queue full) never is: the caller decides whether to shed or wait.
// Thread-safe: one Client serves any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace invad::client {

struct ClientOptions {
  // "host:port", "dns:///host:port" (every address of the name, round-robin), "unix:/path", ...
  std::string target = "localhost:50051";
  // TLS when tls_ca_file is set (PEM of the CA that signed the server); mutual TLS when the client
  // certificate and key are set too. tls_server_name overrides the name checked in the server's
  // certificate (default: the target's host).
  std::string tls_ca_file, tls_cert_file, tls_key_file, tls_server_name;
  // Sent as `authorization: Bearer <token>` on every call except health. Empty: none.
  std::string bearer_token;
  // Deadline of calls whose options give none.
  absl::Duration default_deadline = absl::Seconds(10);
  // Attempts per call on UNAVAILABLE, or on CANCELLED sent by the server (a call racing its
  // shutdown; never one this client cancelled) (1 = no retry; gRPC caps it at 5), with
  // exponential backoff from initial_backoff, doubling, up to max_backoff.
  int max_attempts = 4;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // HTTP/2 keepalive pings on idle connections (0: off), so dead peers are noticed.
  absl::Duration keepalive_time = absl::Seconds(30);
  int max_message_bytes = 64 << 20;
};

enum class PixelOrder { kRgb, kBgr, kGray };

struct Image {
  std::string encoded;  // PNG, JPEG, BMP, TIFF or PNM bytes; or, if empty, raw pixels below
  int width = 0, height = 0, channels = 0;  // raw: 1 or 3 channels
  int bits = 8;                             // 8 or 16 (little-endian)
  int64_t row_stride = 0;                   // bytes per row; 0 = packed
  PixelOrder order = PixelOrder::kRgb;
  std::string pixels;

  static Image Encoded(std::string bytes);
  static Image Raw(int width, int height, int channels, std::string pixels,
                   PixelOrder order = PixelOrder::kRgb, int bits = 8, int64_t row_stride = 0);
};

struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
};

enum class MapKind { kNone, kLatent, kNetwork, kOriginal, kHeatmapPng, kMaskPng };

// Echoed back unchanged in the result, and written in the server's request logs.
struct Correlation {
  std::string request_id, camera_id, frame_id;
  int64_t capture_time_unix_ns = 0;
  uint64_t trigger_count = 0;
};

struct ScoreOptions {
  std::string model;     // required
  int64_t version = 0;   // 0: latest ready
  std::string category;  // multi-category models
  int steps = 0;         // K; 0: the model's default
  std::optional<double> threshold;
  MapKind map = MapKind::kNone;
  std::optional<Rect> region;
  bool tiling = false;
  int tile_size = 0, tile_overlap = 0;
  Correlation ids;
  absl::Duration deadline = absl::ZeroDuration();  // 0: ClientOptions::default_deadline
};

struct Region {
  Rect box;
  int64_t area = 0;
  float peak = 0;
};

struct ScoreResult {
  double score = 0;  // calibrated; anomalous = score > threshold
  bool anomalous = false;
  double threshold = 0;
  double sq_norm_term = 0, diff_term = 0, sq_norm = 0, diff = 0;
  double max_norm_term = 0, max_norm = 0;
  double positional_max_term = 0, positional_max = 0;  // 0 when the calibration has none
  // "positional_max_norm" (score = positional_max_term), "max_norm" (score = max_norm_term) or
  // "diff_sq_norm" (the sum of two)
  std::string score_rule;
  std::vector<Region> regions;  // highest peak first
  int map_width = 0, map_height = 0;
  std::vector<float> map;  // row-major, when a float map was requested
  std::string map_png;     // when a PNG map was requested
  std::string model;
  int64_t version = 0;
  int steps = 0;
  int tiles = 1;
  absl::Duration queue_time, compute_time, server_time;
  std::vector<int> batch_sizes;
  Correlation ids;
};

enum class HealthStatus { kUnknown, kServing, kNotServing, kServiceUnknown };

struct CalibrationInfo {
  int steps = 0;
  std::string category;  // "" = all images
  double image_threshold = 0, pixel_threshold = 0, target_fpr = 0, fpr_resolution = 0;
  int num_images = 0;
  std::string score_rule;
};

struct ModelVersion {
  int64_t version = 0;
  std::string state;  // LOADING, READY, FAILED, ...
  std::string error;
  int input_width = 0, input_height = 0, input_channels = 0;
  std::vector<int> allowed_steps;
  int default_steps = 0;
  std::vector<std::string> categories;
  std::vector<CalibrationInfo> calibration;
  std::string device, precision, description;
};

struct ModelDescription {
  std::string name;
  std::vector<ModelVersion> versions;
};

// What StreamSession::Send does when max_in_flight frames are unanswered.
enum class OverloadPolicy {
  kBlock,       // wait for room (the camera slows down)
  kDropOldest,  // drop the oldest frame not yet sent to the server; its result reports it
};

struct StreamOptions {
  ScoreOptions defaults;  // model, steps, ... for every frame (ids come per frame)
  int max_in_flight = 16;
  OverloadPolicy overload = OverloadPolicy::kBlock;
  absl::Duration deadline = absl::Hours(24);  // of the whole stream, across reconnects
  // Reopen the stream when it ends with UNAVAILABLE (the server drained, restarted or went away),
  // up to this many times in a row with backoff (100 ms doubling to 5 s; an answer resets the
  // count); 0: the session fails instead. Frames sent but unanswered when it broke complete with
  // UNAVAILABLE (not resent: a camera's frames go stale); frames not yet sent go on the new one.
  // A draining invad-server answers every frame it read before ending the stream.
  int reconnect_attempts = 0;
};

// One frame's result on a stream: in the order frames were sent.
struct FrameResult {
  std::string frame_id;
  uint64_t sequence = 0;               // 0-based Send() index
  absl::StatusOr<ScoreResult> result;  // a frame error (bad image, ...) or a dropped frame
  bool dropped = false;                // dropped by OverloadPolicy::kDropOldest, never sent
};

// A camera's stream: frames in, results out in order. Send() and Next() may run on different
// threads (one sender, one reader).
class StreamSession {
 public:
  virtual ~StreamSession() = default;
  // Queues a frame; false once the stream has failed or Finish() was called.
  virtual bool Send(const Image& image, const Correlation& ids) = 0;
  // The next result in order; nullopt when every sent frame has been answered after Finish(),
  // or the stream failed (then Finish() says why).
  virtual std::optional<FrameResult> Next() = 0;
  // No more frames; waits until every result has been read or dropped... and returns the stream's
  // final status.
  virtual absl::Status Finish() = 0;
  // Frames dropped by the overload policy so far.
  virtual int64_t dropped() const = 0;
  // Times the stream was reopened (StreamOptions::reconnect_attempts).
  virtual int64_t reconnects() const = 0;
};

// An in-flight asynchronous call.
class PendingCall {
 public:
  virtual ~PendingCall() = default;
  // Asks the server to drop the call (it completes with CANCELLED unless already answered).
  // Safe at any time, also after completion.
  virtual void Cancel() = 0;
};

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);
  // Destroying a client waits for the callbacks of its ScoreAsync calls to finish (unanswered
  // calls end at their deadline; PendingCall::Cancel them first to hurry).
  virtual ~Client() = default;

  virtual absl::StatusOr<ScoreResult> Score(const Image& image, const ScoreOptions& options) = 0;
  // `done` runs once, on a gRPC thread; keep it short. The handle may be ignored.
  virtual std::shared_ptr<PendingCall> ScoreAsync(
      const Image& image, const ScoreOptions& options,
      std::function<void(absl::StatusOr<ScoreResult>)> done) = 0;
  virtual absl::StatusOr<std::unique_ptr<StreamSession>> OpenStream(
      const StreamOptions& options) = 0;

  // grpc.health.v1 Check ("" = ready to serve, "liveness" = alive); no token sent.
  virtual absl::StatusOr<HealthStatus> Health(const std::string& service = "") = 0;
  virtual absl::StatusOr<std::vector<ModelDescription>> ListModels() = 0;
};

const char* HealthStatusName(HealthStatus s);

}  // namespace invad::client

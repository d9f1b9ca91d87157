// invad-server: serves every model of a model repository over gRPC (docs/serving.md).
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "core/runtime/runtime.h"
#include "server/auth.h"
#include "server/log.h"
#include "server/server.h"

ABSL_FLAG(std::string, grpc_address, "0.0.0.0:50051", "host:port for the gRPC API.");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9464",
          "host:port for Prometheus /metrics (empty: no metrics endpoint).");
ABSL_FLAG(std::string, model_repository, "models",
          "Model repository: <repo>/<name>/<version>/ (a folder written by invad-train --out "
          "<repo>/<name> is served as model <name>).");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda[:N].");
ABSL_FLAG(std::string, host_memory, "auto",
          "Host memory of batch buffers: auto (pinned on cuda, ordinary on cpu), pageable, or "
          "pinned (cuda only).");
ABSL_FLAG(int, intra_op_threads, 0, "LibTorch intra-op threads, server-wide (0: one per core).");
ABSL_FLAG(int, instances, 1, "Model instances (execution threads) per model version.");
ABSL_FLAG(int, max_batch_size, 16, "Largest batch of one model call.");
ABSL_FLAG(int64_t, max_queue_delay_us, 2000, "Longest wait for a fuller batch (microseconds).");
ABSL_FLAG(int, max_queue_size, 256, "Queued tasks per model before RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, batching_mode, "whole", "whole (whole-request) or step (step-level).");
ABSL_FLAG(bool, admission_control, false,
          "Reject at once (DEADLINE_EXCEEDED) what the queue cannot serve before its deadline.");
ABSL_FLAG(absl::Duration, default_timeout, absl::Seconds(30), "Deadline of calls without one.");
ABSL_FLAG(int, max_stream_in_flight, 32, "Unanswered frames per ScoreStream before reading stops.");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest request message (gRPC answers larger ones RESOURCE_EXHAUSTED).");
ABSL_FLAG(int64_t, max_pixels, 100'000'000, "Largest decoded image, width x height.");
ABSL_FLAG(absl::Duration, drain_grace_period, absl::Seconds(20),
          "On SIGTERM/SIGINT: time for in-flight work before the server stops.");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(),
          "Close client connections after this age so scale-outs rebalance (0: never).");
ABSL_FLAG(bool, reflection, true, "gRPC server reflection.");
ABSL_FLAG(std::string, log_format, "text", "text or json (one JSON object per line).");
ABSL_FLAG(bool, log_requests, false,
          "Log every request (failed ones are always logged), with its correlation ids.");
ABSL_FLAG(absl::Duration, repository_poll_interval, absl::ZeroDuration(),
          "Re-read the model repository this often (new models and versions load, removed ones "
          "drain); 0: only on SIGHUP.");
ABSL_FLAG(int, model_versions, 1, "Versions served per model: the highest N.");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM server certificate (with --tls_key_file: TLS on).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA; clients must present a certificate it signed (mutual TLS).");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding a bearer token every RPC except health must carry "
          "(metadata 'authorization: Bearer <token>').");
ABSL_FLAG(std::string, health_address, "",
          "Extra plaintext host:port serving only grpc.health.v1 (for Kubernetes probes when TLS "
          "is on); empty: none.");

namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_reload = 0;
void OnSignal(int sig) { g_signal = sig; }
void OnHangup(int) { g_reload = 1; }

using invad::server::Log;

void LogReload(const absl::StatusOr<invad::server::ReloadSummary>& r) {
  if (!r.ok()) {
    Log("error", "reload failed", {{"error", r.status().ToString()}});
    return;
  }
  for (const auto& m : r->loaded) Log("info", absl::StrCat("loaded ", m));
  for (const auto& m : r->unloaded) Log("info", absl::StrCat("unloaded ", m));
  for (const auto& m : r->failed) Log("error", absl::StrCat("failed ", m));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves anomaly detection models over gRPC.\n  invad-server --model_repository=models "
      "[--flagfile=server.flags]");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "server/main.cc");
  };
  usage.version_string = [] { return std::string("invad-server ") + INVAD_VERSION + "\n"; };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  invad::server::LogFormat log_format;
  if (!invad::server::ParseLogFormat(absl::GetFlag(FLAGS_log_format), &log_format)) {
    std::fprintf(stderr, "invad-server: --log_format must be text or json\n");
    return 2;
  }
  invad::server::SetLogFormat(log_format);
  if (absl::Status s = invad::core::ConfigureProcess(absl::GetFlag(FLAGS_intra_op_threads));
      !s.ok()) {
    std::fprintf(stderr, "invad-server: %s\n", s.ToString().c_str());
    return 2;
  }
  invad::server::ServerOptions o;
  o.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  o.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  o.build_version = INVAD_VERSION;
  o.service.build_version = INVAD_VERSION;
  o.repository.root = absl::GetFlag(FLAGS_model_repository);
  o.repository.device = absl::GetFlag(FLAGS_device);
  absl::StatusOr<invad::core::HostMemory> host_memory =
      invad::core::ParseHostMemory(absl::GetFlag(FLAGS_host_memory));
  if (!host_memory.ok()) {
    std::fprintf(stderr, "invad-server: --host_memory: %s\n",
                 std::string(host_memory.status().message()).c_str());
    return 2;
  }
  o.repository.host_memory = *host_memory;
  if (absl::Status s =
          invad::core::HostAllocatorFor({.device = o.repository.device}, o.repository.host_memory)
              .status();
      !s.ok()) {
    std::fprintf(stderr, "invad-server: --device/--host_memory: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  invad::core::SchedulerOptions& b = o.repository.scheduler;
  b.instances = absl::GetFlag(FLAGS_instances);
  b.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  b.max_queue_delay_us = absl::GetFlag(FLAGS_max_queue_delay_us);
  b.max_queue_size = absl::GetFlag(FLAGS_max_queue_size);
  b.admission_control = absl::GetFlag(FLAGS_admission_control);
  b.default_timeout = absl::GetFlag(FLAGS_default_timeout);
  const std::string mode = absl::GetFlag(FLAGS_batching_mode);
  if (mode != "whole" && mode != "step") {
    std::fprintf(stderr, "invad-server: --batching_mode must be whole or step, not %s\n",
                 mode.c_str());
    return 2;
  }
  b.mode = mode == "step" ? invad::core::BatchingMode::kStepLevel
                          : invad::core::BatchingMode::kWholeRequest;
  if (absl::Status s = b.Validate(); !s.ok()) {
    std::fprintf(stderr, "invad-server: %s\n", s.ToString().c_str());
    return 2;
  }
  o.service.max_stream_in_flight = absl::GetFlag(FLAGS_max_stream_in_flight);
  o.service.limits.decode.max_pixels = absl::GetFlag(FLAGS_max_pixels);
  o.service.limits.decode.max_encoded_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.max_receive_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.reflection = absl::GetFlag(FLAGS_reflection);
  o.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  o.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  o.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  o.health_address = absl::GetFlag(FLAGS_health_address);
  if (const std::string f = absl::GetFlag(FLAGS_auth_token_file); !f.empty()) {
    absl::StatusOr<std::string> token = invad::server::ReadTokenFile(f);
    if (!token.ok()) {
      std::fprintf(stderr, "invad-server: %s\n", token.status().ToString().c_str());
      return 2;
    }
    o.service.bearer_token = *token;
  }
  o.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGHUP, OnHangup);
  o.repository.versions_per_model = absl::GetFlag(FLAGS_model_versions);
  if (o.repository.versions_per_model < 1) {
    std::fprintf(stderr, "invad-server: --model_versions must be >= 1\n");
    return 2;
  }
  o.service.log_requests = absl::GetFlag(FLAGS_log_requests);
  invad::server::Server server(o);
  if (absl::Status s = server.Start(); !s.ok()) {
    Log("error", "could not start", {{"error", s.ToString()}});
    return 2;
  }
  if (!o.metrics_address.empty()) {
    Log("info", absl::StrCat("metrics on port ", server.metrics().exposer_port()),
        {{"address", o.metrics_address}});
  }
  if (!o.health_address.empty()) {
    Log("info", absl::StrCat("health on port ", server.health_port()),
        {{"address", o.health_address}});
  }
  Log("info", absl::StrCat("listening on port ", server.port()),
      {{"address", o.grpc_address},
       {"tls", o.tls_cert_file.empty() ? "off" : (o.tls_client_ca_file.empty() ? "on" : "mutual")},
       {"auth", o.service.bearer_token.empty() ? "off" : "token"},
       {"repository", o.repository.root},
       {"device", o.repository.device},
       {"host_memory", absl::GetFlag(FLAGS_host_memory)},
       {"intra_op_threads", std::to_string(invad::core::TorchIntraOpThreads())},
       {"instances", std::to_string(b.instances)},
       {"max_batch_size", std::to_string(b.max_batch_size)},
       {"batching_mode", mode},
       {"version", INVAD_VERSION}});
  if (absl::Status s = server.LoadModels(); !s.ok()) {
    Log("error", "could not load the model repository", {{"error", s.ToString()}});
    return 2;
  }
  const invad::v1::ListModelsResponse models = server.repository().List();
  for (const auto& m : models.models()) {
    for (const auto& v : m.versions()) {
      Log(v.state() == invad::v1::VersionInfo::READY ? "info" : "error", "model",
          {{"model", m.name()},
           {"version", std::to_string(v.version())},
           {"state", invad::v1::VersionInfo::State_Name(v.state())},
           {"input", absl::StrCat(v.input_width(), "x", v.input_height(), "x", v.input_channels())},
           {"precision", v.precision()},
           {"error", v.error()}});
    }
  }
  if (server.repository().Ready()) {
    Log("info", "ready");
  } else {
    Log("error", "no model is ready (health \"\" NOT_SERVING)");
  }
  const absl::Duration poll = absl::GetFlag(FLAGS_repository_poll_interval);
  absl::Time next_poll = absl::Now() + poll;
  while (g_signal == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const bool due = poll > absl::ZeroDuration() && absl::Now() >= next_poll;
    if (g_reload != 0 || due) {
      if (g_reload != 0) Log("info", "SIGHUP, reloading the repository");
      g_reload = 0;
      next_poll = absl::Now() + poll;
      LogReload(server.Reload());
    }
  }
  Log("info", "draining",
      {{"signal", std::to_string(static_cast<int>(g_signal))},
       {"grace", absl::FormatDuration(absl::GetFlag(FLAGS_drain_grace_period))}});
  server.Drain(absl::GetFlag(FLAGS_drain_grace_period));
  Log("info", "stopped");
  return 0;
}

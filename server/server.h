// File: server/server.h
//
// invad-server's parts wired together: the model repository, the AnomalyDetection service, gRPC
// health (grpc.health.v1 Check and Watch) and reflection. Lifecycle:
//
//   Server s(options);            // nothing listens yet
//   s.Start();                    // listen; health "" NOT_SERVING, "liveness" SERVING
//   s.LoadModels();               // load + warm up; then "" SERVING
//   ...                           // SIGTERM:
//   s.Drain(grace);               // "" NOT_SERVING at once, stop new RPCs, finish in-flight work
//
// Health entries: "" = ready to serve (NOT_SERVING while warming and from the first moment of a
// drain), "liveness" = the process is alive, "invad.v1.AnomalyDetection" and
// "inference.GRPCInferenceService" (KServe v2) = as "".
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"

#include "server/kserve.h"
#include "server/metrics.h"
#include "server/model_repository.h"
#include "server/service.h"

namespace invad::server {

struct ServerOptions {
  std::string grpc_address = "0.0.0.0:50051";
  // Prometheus /metrics (host:port; "" = no exposer; the registry still exists for tests).
  std::string metrics_address;
  std::string build_version = "dev";
  RepositoryOptions repository;
  ServiceOptions service;
  int max_receive_message_bytes = 64 << 20;
  bool reflection = true;
  // TLS: PEM files. With client_ca_file set, clients must present a certificate it signed (mTLS).
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  // Plaintext address serving only grpc.health.v1 (Kubernetes' native gRPC probes cannot speak
  // TLS); "" = none. It mirrors the main server's health statuses.
  std::string health_address;
  // Close connections after this age (plus a grace period) so clients reconnect and a scale-out
  // spreads them; zero: never.
  absl::Duration max_connection_age = absl::ZeroDuration();
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  // Binds and starts serving RPCs (health says NOT_SERVING until LoadModels finishes).
  absl::Status Start();
  // The ports actually bound (for ":0").
  int port() const { return port_; }
  int health_port() const { return health_port_; }
  // Loads and warms up the repository, then marks the server ready.
  absl::Status LoadModels();
  // Re-reads the model repository (SIGHUP, polling) without failing in-flight requests;
  // see ModelRepository::Reload.
  absl::StatusOr<ReloadSummary> Reload();
  // NOT_SERVING, stop accepting RPCs, give in-flight work `grace`, then stop.
  void Drain(absl::Duration grace);
  void Wait();

  ModelRepository& repository() { return *repository_; }
  Metrics& metrics() { return *metrics_; }

 private:
  void SetServing(bool serving);
  void PublishModelStates();

  const ServerOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<AnomalyDetectionService> service_;
  std::unique_ptr<KServeService> kserve_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;
  int port_ = 0;
  int health_port_ = 0;
  bool drained_ = false;
};

}  // namespace invad::server

#include "server/server.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace invad::server {

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read the ", what, " ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& o) {
  if (o.tls_cert_file.empty() && o.tls_key_file.empty()) {
    if (!o.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "a client CA (mTLS) needs --tls_cert_file and --tls_key_file");
    }
    return grpc::InsecureServerCredentials();
  }
  if (o.tls_cert_file.empty() || o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert_file and --tls_key_file");
  }
  absl::StatusOr<std::string> cert = ReadFile(o.tls_cert_file, "TLS certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(o.tls_key_file, "TLS key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!o.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(o.tls_client_ca_file, "client CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

RepositoryOptions WithObservers(RepositoryOptions o, Metrics* metrics) {
  o.observer_factory = [metrics, capacity = o.scheduler.max_queue_size](const std::string& name,
                                                                        int version) {
    return metrics->ObserverFor(name, version, capacity);
  };
  return o;
}

}  // namespace

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      metrics_(std::make_unique<Metrics>(options_.build_version)),
      repository_(
          std::make_unique<ModelRepository>(WithObservers(options_.repository, metrics_.get()))),
      service_(std::make_unique<AnomalyDetectionService>(repository_.get(), options_.service,
                                                         metrics_.get())),
      kserve_(std::make_unique<KServeService>(service_.get())) {}

Server::~Server() {
  if (server_ && !drained_) Drain(absl::ZeroDuration());
}

absl::Status Server::Start() {
  if (!options_.metrics_address.empty()) {
    if (absl::Status s = metrics_->StartExposer(options_.metrics_address); !s.ok()) return s;
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = Credentials(options_);
  if (!creds.ok()) return creds.status();
  grpc::EnableDefaultHealthCheckService(true);
  if (options_.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_address, *creds, &port_);
  builder.RegisterService(service_.get());
  builder.RegisterService(kserve_.get());
  builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  if (options_.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(options_.max_connection_age)));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30'000);
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", options_.grpc_address, " (address in use?)"));
  }
  if (!options_.health_address.empty()) {
    grpc::ServerBuilder hb;
    hb.AddListeningPort(options_.health_address, grpc::InsecureServerCredentials(), &health_port_);
    health_server_ = hb.BuildAndStart();
    if (health_server_ == nullptr || health_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("could not listen on ", options_.health_address, " (health)"));
    }
  }
  for (grpc::Server* s : {server_.get(), health_server_.get()}) {
    if (s != nullptr) s->GetHealthCheckService()->SetServingStatus("liveness", true);
  }
  SetServing(false);
  return absl::OkStatus();
}

void Server::SetServing(bool serving) {
  kserve_->SetReady(serving);
  for (grpc::Server* s : {server_.get(), health_server_.get()}) {
    if (s == nullptr) continue;
    grpc::HealthCheckServiceInterface* health = s->GetHealthCheckService();
    health->SetServingStatus("", serving);
    health->SetServingStatus(v1::AnomalyDetection::service_full_name(), serving);
    health->SetServingStatus(inference::GRPCInferenceService::service_full_name(), serving);
  }
}

void Server::PublishModelStates() {
  const v1::ListModelsResponse models = repository_->List();
  for (const v1::ModelInfo& m : models.models()) {
    for (const v1::VersionInfo& v : m.versions()) {
      metrics_->SetModelReady(m.name(), static_cast<int>(v.version()),
                              v.state() == v1::VersionInfo::READY);
    }
  }
}

absl::Status Server::LoadModels() {
  if (absl::Status s = repository_->LoadAll(); !s.ok()) return s;
  PublishModelStates();
  SetServing(repository_->Ready());
  return absl::OkStatus();
}

absl::StatusOr<ReloadSummary> Server::Reload() {
  absl::StatusOr<ReloadSummary> r = repository_->Reload();
  if (!r.ok()) return r;
  for (const std::string& gone : r->unloaded) {
    const size_t slash = gone.rfind('/');
    // A retired version leaves the ready gauge (a 0 there would page InvadModelNotReady forever).
    metrics_->RemoveModel(gone.substr(0, slash), std::stoi(gone.substr(slash + 1)));
  }
  PublishModelStates();
  if (!drained_) SetServing(repository_->Ready());
  return r;
}

void Server::Drain(absl::Duration grace) {
  if (drained_ || server_ == nullptr) return;
  drained_ = true;
  SetServing(false);
  service_->BeginDrain();  // new calls: UNAVAILABLE; open ScoreStreams wind down
  // Before gRPC's Shutdown (GOAWAY; calls racing it may be cancelled, which clients must not
  // retry), give clients and load balancers a moment in which new calls get the retryable
  // UNAVAILABLE: a tenth of the grace period, at most 1 s.
  absl::SleepFor(std::min(absl::Seconds(1), grace / 10));
  const v1::ListModelsResponse models = repository_->List();
  for (const v1::ModelInfo& m : models.models()) {
    for (const v1::VersionInfo& v : m.versions()) {
      metrics_->SetModelReady(m.name(), static_cast<int>(v.version()), false);
    }
  }
  // Shutdown(deadline) stops new RPCs (GOAWAY), waits for in-flight ones until the deadline,
  // then cancels what is left; the schedulers drain meanwhile with the same grace.
  std::thread schedulers([this, grace] { repository_->Shutdown(grace); });
  // Health Watch streams would hold Shutdown until the deadline: end them first (every entry
  // turns NOT_SERVING; the process is on its way out).
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  schedulers.join();
  if (health_server_) {
    health_server_->GetHealthCheckService()->Shutdown();
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
  }
}

void Server::Wait() {
  if (server_) server_->Wait();
}

}  // namespace invad::server

#include "server/server.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"

namespace invad::server {

namespace {

RepositoryOptions WithObservers(RepositoryOptions o, Metrics* metrics) {
  o.observer_factory = [metrics](const std::string& name, int version) {
    return metrics->ObserverFor(name, version);
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
                                                         metrics_.get())) {}

Server::~Server() {
  if (server_ && !drained_) Drain(absl::ZeroDuration());
}

absl::Status Server::Start() {
  if (!options_.metrics_address.empty()) {
    if (absl::Status s = metrics_->StartExposer(options_.metrics_address); !s.ok()) return s;
  }
  grpc::EnableDefaultHealthCheckService(true);
  if (options_.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_address, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service_.get());
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
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("liveness", true);
  SetServing(false);
  return absl::OkStatus();
}

void Server::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", serving);
  health->SetServingStatus(v1::AnomalyDetection::service_full_name(), serving);
}

absl::Status Server::LoadModels() {
  if (absl::Status s = repository_->LoadAll(); !s.ok()) return s;
  const v1::ListModelsResponse models = repository_->List();
  for (const v1::ModelInfo& m : models.models()) {
    for (const v1::VersionInfo& v : m.versions()) {
      metrics_->SetModelReady(m.name(), static_cast<int>(v.version()),
                              v.state() == v1::VersionInfo::READY);
    }
  }
  SetServing(repository_->Ready());
  return absl::OkStatus();
}

void Server::Drain(absl::Duration grace) {
  if (drained_ || server_ == nullptr) return;
  drained_ = true;
  SetServing(false);
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
}

void Server::Wait() {
  if (server_) server_->Wait();
}

}  // namespace invad::server

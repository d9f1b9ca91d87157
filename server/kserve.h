// File: server/kserve.h
//
// A minimal Open Inference Protocol (KServe v2) front end over the same scoring path and batcher
// as invad.v1 (docs/api.md has the mapping):
//   input  "image": BYTES [1] (an encoded image) or UINT8/UINT16 [H, W] or [H, W, C] (RGB pixels)
//   parameters: "steps" (int64), "category" (string)
//   outputs: "score" FP64 [1], "anomalous" BOOL [1], "threshold" FP64 [1], and on request
//            "anomaly_map" FP32 [h, w] (latent resolution)
// ServerLive / ServerReady / ModelReady follow the health contract; ModelMetadata describes the
// tensors above. The bearer token applies here too.
#pragma once

#include "kserve/grpc_predict_v2.grpc.pb.h"
#include "server/service.h"

namespace invad::server {

class KServeService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // `service` provides the repository, options and metrics; it must outlive this.
  explicit KServeService(AnomalyDetectionService* service) : service_(service) {}
  // After a drain starts, ServerReady answers false.
  void SetReady(bool ready) { ready_.store(ready); }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;

 private:
  AnomalyDetectionService* service_;
  std::atomic<bool> ready_{false};
};

// The invad.v1 request a ModelInfer request stands for; InvalidArgument naming what is wrong.
absl::StatusOr<v1::ScoreRequest> FromModelInfer(const inference::ModelInferRequest& request);

}  // namespace invad::server

// File: server/status.h
//
// The one place absl::Status becomes a gRPC status (and a stream's in-band error). Both use
// google.rpc.Code, so the code maps one to one; messages are truncated so a pathological error
// cannot blow the trailer size limit.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace invad::server {

inline constexpr size_t kMaxStatusMessageBytes = 1024;

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace invad::server

// File: server/auth.h
//
// Bearer-token authentication: `authorization: Bearer <token>` on every RPC except health (a
// separate service, so load balancers and Kubernetes probes need no secret). Compared in constant
// time; never logged. TLS and mTLS are transport settings (server/server.h).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace invad::server {

// The token in `path` (surrounding whitespace removed). InvalidArgument when unreadable or empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// OK when `token` is empty (auth off) or the call carries it; else UNAUTHENTICATED.
absl::Status CheckBearerToken(const grpc::ServerContextBase& ctx, const std::string& token);

}  // namespace invad::server

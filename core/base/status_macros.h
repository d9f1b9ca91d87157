// Status propagation macros. Debian 12's Abseil (20220623) lacks ABSL_RETURN_IF_ERROR and
// ABSL_ASSIGN_OR_RETURN; these have the same shape so a later upgrade is a rename.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define INVAD_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status invad_status_ = (expr);         \
    if (!invad_status_.ok()) return invad_status_; \
  } while (false)

#define INVAD_CONCAT_INNER_(a, b) a##b
#define INVAD_CONCAT_(a, b) INVAD_CONCAT_INNER_(a, b)

// INVAD_ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define INVAD_ASSIGN_OR_RETURN(lhs, rexpr) \
  INVAD_ASSIGN_OR_RETURN_IMPL_(INVAD_CONCAT_(invad_statusor_, __LINE__), lhs, rexpr)

#define INVAD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

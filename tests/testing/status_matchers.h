// gMock matchers for absl::Status / StatusOr (Debian's Abseil 20220623 has no status_matchers.h).
// Following Abseil's advice, assert the specific code: EXPECT_THAT(s, StatusIs(kInvalidArgument)).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace invad::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status: " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, substring,
           "has status code " + absl::StatusCodeToString(code) + " mentioning " + substring) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code && s.message().find(substring) != absl::string_view::npos;
}

}  // namespace invad::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::invad::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::invad::testing::IsOk())

// File: tests/testing/tls_certs.h
//
// Test certificates made by openssl at test time: a CA, a server certificate for localhost /
// 127.0.0.1 and a client certificate it signed, and a rogue CA. With CI=true a missing openssl
// is a failure (scripts/install-deps.sh installs it), otherwise the caller skips.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"

namespace invad::testing {

// Writes ca.crt/key, server.crt/key, client.crt/key, rogue.crt/key into `dir`. NotFound when
// openssl is not installed; Internal when it fails.
inline absl::Status MakeTestCertificates(const std::filesystem::path& dir) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    return absl::NotFoundError("openssl is not installed");
  }
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "make_certs.sh") << "set -e; cd '" << dir.string() << "'\n"
                                       << R"(
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=invad-test-ca -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=camera-7 -keyout client.key -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rogue-ca -keyout rogue.key -out rogue.crt 2>/dev/null
)";
  if (std::system(("bash '" + (dir / "make_certs.sh").string() + "'").c_str()) != 0) {
    return absl::InternalError("openssl failed to make the test certificates");
  }
  return absl::OkStatus();
}

inline bool RunningInCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

inline std::string ReadText(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace invad::testing

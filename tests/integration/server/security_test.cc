// TLS, mTLS and bearer tokens on the real server, with certificates made by openssl at test time.
// Each test also shows that a properly authenticated client succeeds.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <unistd.h>

#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

#include "grpc/health/v1/health.grpc.pb.h"
#include "invad/v1/inference.grpc.pb.h"
#include "server/auth.h"
#include "server/server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_bundle.h"
#include "tests/testing/tls_certs.h"

namespace invad::server {
namespace {

namespace fs = std::filesystem;

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("invad_tls_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    // A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, all signed
    // by the CA; plus a second CA whose client certificate the server must refuse.
    absl::Status certs = invad::testing::MakeTestCertificates(*dir_);
    if (absl::IsNotFound(certs)) {
      if (invad::testing::RunningInCi()) {
        FAIL() << "openssl missing (scripts/install-deps.sh installs it)";
      }
      GTEST_SKIP() << "openssl not installed";
    }
    ASSERT_OK(certs);
    std::ofstream(*dir_ / "token.txt") << "  s3cret-token\n";
    ASSERT_OK(invad::testing::WriteTinyBundle((*dir_ / "repo" / "tiny").string()).status());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  void TearDown() override {
    if (server_) server_->Drain(absl::ZeroDuration());
  }

  void Start(ServerOptions o) {
    o.grpc_address = "127.0.0.1:0";
    o.repository.root = (*dir_ / "repo").string();
    server_ = std::make_unique<Server>(o);
    ASSERT_OK(server_->Start());
    ASSERT_OK(server_->LoadModels());
  }
  // `client`: "" (no client certificate), "client" (signed by the CA) or "rogue" (self-signed).
  std::shared_ptr<grpc::ChannelCredentials> Tls(bool client_cert, const std::string& ca = "ca",
                                                const std::string& client = "client") {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = invad::testing::ReadText(*dir_ / (ca + ".crt"));
    if (client_cert) {
      o.pem_private_key = invad::testing::ReadText(*dir_ / (client + ".key"));
      o.pem_cert_chain = invad::testing::ReadText(*dir_ / (client + ".crt"));
    }
    return grpc::SslCredentials(o);
  }
  // Model calls and scheduler tasks so far (the compute counters).
  double ComputeCount() {
    std::istringstream text(server_->metrics().Serialize());
    double sum = 0;
    for (std::string line; std::getline(text, line);) {
      for (const std::string family :
           {"invad_model_call_duration_seconds_count", "invad_tasks_total"}) {
        if (line.rfind(family, 0) == 0 && line.size() > family.size() &&
            (line[family.size()] == '{' || line[family.size()] == ' ')) {
          sum += std::stod(line.substr(line.rfind(' ') + 1));
        }
      }
    }
    return sum;
  }
  grpc::Status Score(const std::shared_ptr<grpc::ChannelCredentials>& creds,
                     const std::string& token = "") {
    grpc::ChannelArguments args;
    // The address, not the name: a machine without /etc/hosts (a fresh chroot, a bare container)
    // cannot resolve "localhost" offline; the certificate is checked against that name.
    args.SetSslTargetNameOverride("localhost");
    auto stub = v1::AnomalyDetection::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()), creds, args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ScoreRequest req;
    req.set_model("tiny");
    cv::Mat img(32, 32, CV_8UC3, cv::Scalar(90, 120, 150));
    std::vector<uint8_t> png;
    cv::imencode(".png", img, png);
    req.mutable_image()->set_encoded(std::string(png.begin(), png.end()));
    v1::ScoreResponse resp;
    return stub->Score(&ctx, req, &resp);
  }

  static fs::path* dir_;
  std::unique_ptr<Server> server_;
};
fs::path* SecurityTest::dir_ = nullptr;

TEST_F(SecurityTest, TlsServesTrustingClientsAndRefusesPlaintext) {
  ServerOptions o;
  o.tls_cert_file = (*dir_ / "server.crt").string();
  o.tls_key_file = (*dir_ / "server.key").string();
  Start(o);
  grpc::Status ok = Score(Tls(false));
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(Score(grpc::InsecureChannelCredentials()).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Score(Tls(false, "rogue")).error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a client that does not trust the server's CA must not connect";
}

TEST_F(SecurityTest, MutualTlsRequiresAClientCertificateFromTheConfiguredCa) {
  ServerOptions o;
  o.tls_cert_file = (*dir_ / "server.crt").string();
  o.tls_key_file = (*dir_ / "server.key").string();
  o.tls_client_ca_file = (*dir_ / "ca.crt").string();
  Start(o);
  grpc::Status ok = Score(Tls(true));
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(Score(Tls(false)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

// Issue 8, fault test 5: with mutual TLS and a token, clients without the token or with a wrong
// certificate never reach a model (the compute counters do not move); the authorised client in
// the same test moves them.
TEST_F(SecurityTest, UnauthorisedClientsNeverReachTheModel) {
  ServerOptions o;
  o.tls_cert_file = (*dir_ / "server.crt").string();
  o.tls_key_file = (*dir_ / "server.key").string();
  o.tls_client_ca_file = (*dir_ / "ca.crt").string();
  o.service.bearer_token = "s3cret-token";
  Start(o);
  const double before = ComputeCount();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Score(Tls(true)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Score(Tls(true), "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Score(Tls(false), "s3cret-token").error_code(), grpc::StatusCode::UNAVAILABLE)
        << "no client certificate";
    EXPECT_EQ(Score(Tls(true, "ca", "rogue"), "s3cret-token").error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << "a client certificate the configured CA did not sign";
    EXPECT_EQ(Score(grpc::InsecureChannelCredentials(), "s3cret-token").error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << "plaintext";
  }
  EXPECT_EQ(ComputeCount(), before) << "an unauthorised call reached the model";
  grpc::Status ok = Score(Tls(true), "s3cret-token");
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_GT(ComputeCount(), before) << "the counters must see the authorised call";
}

TEST_F(SecurityTest, BearerTokenGuardsEveryRpcButHealth) {
  ServerOptions o;
  absl::StatusOr<std::string> token = ReadTokenFile((*dir_ / "token.txt").string());
  ASSERT_OK(token.status());
  EXPECT_EQ(*token, "s3cret-token");  // surrounding whitespace removed
  o.service.bearer_token = *token;
  o.health_address = "127.0.0.1:0";
  Start(o);
  EXPECT_EQ(Score(grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Score(grpc::InsecureChannelCredentials(), "wrong").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status ok = Score(grpc::InsecureChannelCredentials(), "s3cret-token");
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  // ListModels too; health needs no token, on the main port and on --health_address.
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                     grpc::InsecureChannelCredentials());
  grpc::ClientContext list_ctx;
  v1::ListModelsResponse list;
  EXPECT_EQ(v1::AnomalyDetection::NewStub(channel)
                ->ListModels(&list_ctx, v1::ListModelsRequest(), &list)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  for (int port : {server_->port(), server_->health_port()}) {
    auto health = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << "port " << port;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << "port " << port;
  }
}

}  // namespace
}  // namespace invad::server

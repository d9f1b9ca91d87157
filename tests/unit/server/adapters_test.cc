// The server's pure adapters: absl::Status → gRPC status, and KServe v2 ModelInfer → invad.v1.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server/kserve.h"
#include "server/log.h"
#include "server/status.h"
#include "tests/testing/status_matchers.h"

namespace invad::server {
namespace {

using ::invad::testing::StatusIs;

TEST(ToGrpcStatusTest, EveryCodeMapsOneToOneAndLongMessagesAreTruncated) {
  for (int c = 0; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    const grpc::Status g =
        ToGrpcStatus(absl::Status(code, code == absl::StatusCode::kOk ? "" : "m"));
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
  }
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("queue full")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  const grpc::Status g = ToGrpcStatus(absl::InvalidArgumentError(std::string(5000, 'x')));
  EXPECT_EQ(g.error_message().size(), kMaxStatusMessageBytes);
  EXPECT_EQ(g.error_message().substr(kMaxStatusMessageBytes - 3), "...");
}

inference::ModelInferRequest Bytes(const std::string& payload, bool raw) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  r.set_model_version("2");
  r.set_id("req-9");
  auto* in = r.add_inputs();
  in->set_name("image");
  in->set_datatype("BYTES");
  in->add_shape(1);
  if (raw) {
    std::string b(4, '\0');
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((payload.size() >> (8 * i)) & 0xff);
    r.add_raw_input_contents(b + payload);
  } else {
    in->mutable_contents()->add_bytes_contents(payload);
  }
  return r;
}

TEST(FromModelInferTest, EncodedImagesFromContentsOrLengthPrefixedRawBytes) {
  for (bool raw : {false, true}) {
    absl::StatusOr<v1::ScoreRequest> s = FromModelInfer(Bytes("\x89PNG....", raw));
    ASSERT_OK(s.status());
    EXPECT_EQ(s->model(), "m");
    EXPECT_EQ(s->version(), 2);
    EXPECT_EQ(s->correlation().request_id(), "req-9");
    EXPECT_EQ(s->image().encoded(), "\x89PNG....");
  }
  inference::ModelInferRequest r = Bytes("abc", true);
  r.set_raw_input_contents(0, std::string("\x09\0\0\0abc", 7));  // declares 9 bytes, has 3
  EXPECT_THAT(FromModelInfer(r), StatusIs(absl::StatusCode::kInvalidArgument, "declares 9"));
}

TEST(FromModelInferTest, PixelsParametersAndErrors) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  auto* in = r.add_inputs();
  in->set_name("image");
  in->set_datatype("UINT16");
  for (int d : {2, 1, 3}) in->add_shape(d);
  for (int v : {1, 2, 3, 4, 5, 65535}) in->mutable_contents()->add_uint_contents(v);
  (*r.mutable_parameters())["steps"].set_int64_param(5);
  (*r.mutable_parameters())["category"].set_string_param("wood");
  absl::StatusOr<v1::ScoreRequest> s = FromModelInfer(r);
  ASSERT_OK(s.status());
  EXPECT_EQ(s->steps(), 5);
  EXPECT_EQ(s->category(), "wood");
  const v1::RawImage& raw = s->image().raw();
  EXPECT_EQ(raw.width(), 1);
  EXPECT_EQ(raw.height(), 2);
  EXPECT_EQ(raw.channels(), 3);
  EXPECT_EQ(raw.pixel_type(), v1::UINT16);
  EXPECT_EQ(raw.data(), std::string("\x01\0\x02\0\x03\0\x04\0\x05\0\xff\xff", 12));

  (*r.mutable_parameters())["steps"].set_string_param("five");
  EXPECT_THAT(FromModelInfer(r), StatusIs(absl::StatusCode::kInvalidArgument, "steps"));
  r.mutable_parameters()->erase("steps");
  r.set_model_version("latest");
  EXPECT_THAT(FromModelInfer(r), StatusIs(absl::StatusCode::kInvalidArgument, "model_version"));
  r.set_model_version("");
  r.mutable_inputs(0)->set_datatype("FP32");
  EXPECT_THAT(FromModelInfer(r), StatusIs(absl::StatusCode::kInvalidArgument, "FP32"));
  r.clear_inputs();
  EXPECT_THAT(FromModelInfer(r), StatusIs(absl::StatusCode::kInvalidArgument, "one input"));
}

TEST(LogLineTest, JsonLinesEscapeAndTextQuotesAndEmptyFieldsAreLeftOut) {
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, "T", "warning", "request",
                          {{"frame_id", "f\"1\n"}, {"camera_id", ""}, {"code", "NOT_FOUND"}}),
            "{\"time\":\"T\",\"level\":\"warning\",\"msg\":\"request\",\"frame_id\":\"f\\\"1\\n\","
            "\"code\":\"NOT_FOUND\"}\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, "T", "info", "model",
                          {{"model", "demo"}, {"error", "bad file x"}, {"empty", ""}}),
            "T info model model=demo error=\"bad file x\"\n");
  LogFormat f;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &f));
}

}  // namespace
}  // namespace invad::server

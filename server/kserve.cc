#include "server/kserve.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "server/auth.h"
#include "server/status.h"

namespace invad::server {
namespace {

grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(s));
  return r;
}

absl::StatusOr<int64_t> ParseVersion(const std::string& v) {
  if (v.empty()) return 0;
  int64_t out = 0;
  if (!absl::SimpleAtoi(v, &out) || out <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_version must be empty or a positive integer, got '", v, "'"));
  }
  return out;
}

// BYTES in raw_input_contents: each element is a 4-byte little-endian length, then the bytes.
absl::StatusOr<std::string> FirstRawBytesElement(const std::string& raw) {
  if (raw.size() < 4) return absl::InvalidArgumentError("raw BYTES input shorter than 4 bytes");
  uint32_t n = 0;
  for (int i = 3; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(raw[i]);
  if (raw.size() - 4 < n) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw BYTES element declares ", n, " bytes, has ", raw.size() - 4));
  }
  return raw.substr(4, n);
}

void ToModelInfer(const inference::ModelInferRequest& req, const v1::ScoreResponse& r,
                  inference::ModelInferResponse* out) {
  out->set_model_name(r.model());
  out->set_model_version(std::to_string(r.version()));
  out->set_id(req.id());
  bool want_map = false, want_default = req.outputs().empty();
  for (const auto& o : req.outputs()) {
    if (o.name() == "anomaly_map") want_map = true;
  }
  auto wanted = [&](const std::string& name) {
    if (want_default) return true;
    for (const auto& o : req.outputs()) {
      if (o.name() == name) return true;
    }
    return false;
  };
  auto add = [&](const char* name, const char* type, std::initializer_list<int64_t> shape) {
    auto* t = out->add_outputs();
    t->set_name(name);
    t->set_datatype(type);
    for (int64_t d : shape) t->add_shape(d);
    return t->mutable_contents();
  };
  if (wanted("score")) add("score", "FP64", {1})->add_fp64_contents(r.score());
  if (wanted("anomalous")) add("anomalous", "BOOL", {1})->add_bool_contents(r.anomalous());
  if (wanted("threshold")) add("threshold", "FP64", {1})->add_fp64_contents(r.threshold());
  if (want_map) {
    *add("anomaly_map", "FP32", {r.map().height(), r.map().width()})->mutable_fp32_contents() =
        r.map().values();
  }
  (*out->mutable_parameters())["queue_us"].set_int64_param(r.timings().queue_us());
  (*out->mutable_parameters())["compute_us"].set_int64_param(r.timings().compute_us());
}

}  // namespace

absl::StatusOr<v1::ScoreRequest> FromModelInfer(const inference::ModelInferRequest& request) {
  v1::ScoreRequest out;
  out.set_model(request.model_name());
  absl::StatusOr<int64_t> version = ParseVersion(request.model_version());
  if (!version.ok()) return version.status();
  out.set_version(*version);
  out.mutable_correlation()->set_request_id(request.id());
  for (const auto& [name, p] : request.parameters()) {
    if (name == "steps" && p.parameter_choice_case() == inference::InferParameter::kInt64Param) {
      out.set_steps(static_cast<int32_t>(p.int64_param()));
    } else if (name == "category" &&
               p.parameter_choice_case() == inference::InferParameter::kStringParam) {
      out.set_category(p.string_param());
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown or mistyped parameter '", name,
                                                     "' (known: steps int64, category string)"));
    }
  }
  if (request.inputs_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected one input tensor (\"image\"), got ", request.inputs_size()));
  }
  const auto& in = request.inputs(0);
  const bool raw = !request.raw_input_contents().empty();
  if (in.datatype() == "BYTES") {
    if (in.shape_size() != 1 || in.shape(0) != 1) {
      return absl::InvalidArgumentError("a BYTES image input must have shape [1]");
    }
    if (raw) {
      absl::StatusOr<std::string> b = FirstRawBytesElement(request.raw_input_contents(0));
      if (!b.ok()) return b.status();
      out.mutable_image()->set_encoded(*std::move(b));
    } else if (in.contents().bytes_contents_size() == 1) {
      out.mutable_image()->set_encoded(in.contents().bytes_contents(0));
    } else {
      return absl::InvalidArgumentError("the BYTES image input has no contents");
    }
    return out;
  }
  if (in.datatype() == "UINT8" || in.datatype() == "UINT16") {
    if (in.shape_size() != 2 && in.shape_size() != 3) {
      return absl::InvalidArgumentError("a pixel input must have shape [H, W] or [H, W, C]");
    }
    const int64_t h = in.shape(0), w = in.shape(1), c = in.shape_size() == 3 ? in.shape(2) : 1;
    if (h <= 0 || w <= 0 || h > (1 << 20) || w > (1 << 20)) {
      return absl::InvalidArgumentError(absl::StrCat("bad image shape ", h, "x", w));
    }
    v1::RawImage* r = out.mutable_image()->mutable_raw();
    r->set_width(static_cast<int32_t>(w));
    r->set_height(static_cast<int32_t>(h));
    r->set_channels(static_cast<int32_t>(c));
    const bool u16 = in.datatype() == "UINT16";
    r->set_pixel_type(u16 ? v1::UINT16 : v1::UINT8);
    r->set_order(c == 1 ? v1::GRAY : v1::RGB);
    if (raw) {
      r->set_data(request.raw_input_contents(0));
    } else {
      // uint_contents: one element per sample.
      const auto& v = in.contents().uint_contents();
      std::string data(static_cast<size_t>(v.size()) * (u16 ? 2 : 1), '\0');
      for (int i = 0; i < v.size(); ++i) {
        if (u16) {
          data[2 * i] = static_cast<char>(v[i] & 0xff);
          data[2 * i + 1] = static_cast<char>((v[i] >> 8) & 0xff);
        } else {
          data[i] = static_cast<char>(v[i] & 0xff);
        }
      }
      r->set_data(std::move(data));
    }
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "input datatype ", in.datatype(), " is not BYTES (encoded image), UINT8 or UINT16 (pixels)"));
}

grpc::ServerUnaryReactor* KServeService::ServerLive(grpc::CallbackServerContext* ctx,
                                                    const inference::ServerLiveRequest*,
                                                    inference::ServerLiveResponse* response) {
  response->set_live(true);
  return FinishWith(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ServerReady(grpc::CallbackServerContext* ctx,
                                                     const inference::ServerReadyRequest*,
                                                     inference::ServerReadyResponse* response) {
  response->set_ready(ready_.load() && service_->repo().Ready());
  return FinishWith(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelReady(grpc::CallbackServerContext* ctx,
                                                    const inference::ModelReadyRequest* request,
                                                    inference::ModelReadyResponse* response) {
  if (absl::Status s = CheckBearerToken(*ctx, service_->options().bearer_token); !s.ok()) {
    return FinishWith(ctx, s);
  }
  absl::StatusOr<int64_t> version = ParseVersion(request->version());
  if (!version.ok()) return FinishWith(ctx, version.status());
  absl::StatusOr<std::shared_ptr<ServedModel>> m = service_->repo().Find(request->name(), *version);
  if (!m.ok() && m.status().code() == absl::StatusCode::kNotFound) {
    return FinishWith(ctx, m.status());
  }
  response->set_ready(m.ok() && ready_.load());
  return FinishWith(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ServerMetadata(
    grpc::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  if (absl::Status s = CheckBearerToken(*ctx, service_->options().bearer_token); !s.ok()) {
    return FinishWith(ctx, s);
  }
  response->set_name("invad");
  response->set_version(service_->options().build_version);
  return FinishWith(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelMetadata(
    grpc::CallbackServerContext* ctx, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  if (absl::Status s = CheckBearerToken(*ctx, service_->options().bearer_token); !s.ok()) {
    return FinishWith(ctx, s);
  }
  absl::StatusOr<int64_t> version = ParseVersion(request->version());
  if (!version.ok()) return FinishWith(ctx, version.status());
  absl::StatusOr<v1::ModelInfo> info = service_->repo().Get(request->name(), *version);
  if (!info.ok()) return FinishWith(ctx, info.status());
  response->set_name(info->name());
  response->set_platform("invad_inversion");
  for (const auto& v : info->versions()) response->add_versions(std::to_string(v.version()));
  auto* image = response->add_inputs();
  image->set_name("image");
  image->set_datatype("BYTES");
  image->add_shape(1);
  auto add_out = [&](const char* name, const char* type, std::vector<int64_t> shape) {
    auto* t = response->add_outputs();
    t->set_name(name);
    t->set_datatype(type);
    for (int64_t d : shape) t->add_shape(d);
  };
  add_out("score", "FP64", {1});
  add_out("anomalous", "BOOL", {1});
  add_out("threshold", "FP64", {1});
  add_out("anomaly_map", "FP32", {-1, -1});
  return FinishWith(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelInfer(grpc::CallbackServerContext* ctx,
                                                    const inference::ModelInferRequest* request,
                                                    inference::ModelInferResponse* response) {
  if (absl::Status s = CheckBearerToken(*ctx, service_->options().bearer_token); !s.ok()) {
    return FinishWith(ctx, s);
  }
  absl::StatusOr<v1::ScoreRequest> score = FromModelInfer(*request);
  if (!score.ok()) return FinishWith(ctx, score.status());
  return service_->StartUnary(
      ctx, "ModelInfer", std::make_shared<const v1::ScoreRequest>(*std::move(score)),
      [request, response](v1::ScoreResponse r) { ToModelInfer(*request, r, response); });
}

}  // namespace invad::server

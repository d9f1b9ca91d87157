#include "server/scoring.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "core/scoring/calibration.h"

namespace invad::server {
namespace {

absl::StatusOr<preprocess::Image> DecodeRequestImage(const v1::Image& image,
                                                     const ScoringLimits& limits) {
  switch (image.source_case()) {
    case v1::Image::kEncoded:
      if (image.encoded().empty()) return absl::InvalidArgumentError("image.encoded is empty");
      return preprocess::DecodeImage(image.encoded(), limits.decode);
    case v1::Image::kRaw: {
      const v1::RawImage& r = image.raw();
      preprocess::RawPixels raw;
      raw.width = r.width();
      raw.height = r.height();
      raw.channels = r.channels();
      switch (r.pixel_type()) {
        case v1::PIXEL_TYPE_UNSPECIFIED:
        case v1::UINT8:
          raw.bits = 8;
          break;
        case v1::UINT16:
          raw.bits = 16;
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat("image.raw.pixel_type ", r.pixel_type(), " is not UINT8 or UINT16"));
      }
      raw.row_stride = r.row_stride();
      switch (r.order()) {
        case v1::CHANNEL_ORDER_UNSPECIFIED:
          raw.order =
              r.channels() == 1 ? preprocess::ChannelOrder::kGray : preprocess::ChannelOrder::kRgb;
          break;
        case v1::RGB:
          raw.order = preprocess::ChannelOrder::kRgb;
          break;
        case v1::BGR:
          raw.order = preprocess::ChannelOrder::kBgr;
          break;
        case v1::GRAY:
          raw.order = preprocess::ChannelOrder::kGray;
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat("image.raw.order ", r.order(), " is not RGB, BGR or GRAY"));
      }
      raw.data = r.data();
      return preprocess::FromRawPixels(raw, limits.decode);
    }
    case v1::Image::SOURCE_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("the request has no image (image.encoded or image.raw)");
}

// Crops an interleaved image to `r` (validated against its size).
absl::StatusOr<preprocess::Image> Crop(preprocess::Image image, const v1::Rect& r) {
  if (r.width() == 0 && r.height() == 0 && r.x() == 0 && r.y() == 0) return image;
  if (r.x() < 0 || r.y() < 0 || r.width() <= 0 || r.height() <= 0 ||
      int64_t{r.x()} + r.width() > image.width || int64_t{r.y()} + r.height() > image.height) {
    return absl::InvalidArgumentError(
        absl::StrCat("region (x ", r.x(), ", y ", r.y(), ", ", r.width(), "×", r.height(),
                     ") is not inside the ", image.width, "×", image.height, " image"));
  }
  const size_t pixel = static_cast<size_t>(image.channels) * (image.bits / 8);
  preprocess::Image out = image;
  out.width = r.width();
  out.height = r.height();
  out.data.resize(pixel * out.width * out.height);
  for (int y = 0; y < out.height; ++y) {
    const uint8_t* src =
        image.data.data() + ((size_t{1} * (r.y() + y) * image.width) + r.x()) * pixel;
    std::copy_n(src, pixel * out.width, out.data.data() + pixel * out.width * y);
  }
  return out;
}

int64_t Micros(absl::Duration d) { return absl::ToInt64Microseconds(d); }

void SetMap(const cv::Mat& m, v1::FloatMap* out) {
  out->set_width(m.cols);
  out->set_height(m.rows);
  out->mutable_values()->Reserve(m.cols * m.rows);
  for (int y = 0; y < m.rows; ++y) {
    const float* row = m.ptr<float>(y);
    for (int x = 0; x < m.cols; ++x) out->add_values(row[x]);
  }
}

struct Context {
  std::shared_ptr<ServedModel> model;
  v1::ScoreRequest request;  // without the image bytes
  core::Calibration calibration;
  int steps = 0;
  int original_width = 0, original_height = 0;  // of the scored image (the region if any)
  int offset_x = 0, offset_y = 0;
  absl::Time received;
};

absl::StatusOr<v1::ScoreResponse> BuildResponse(const Context& c, const core::TaskResult& r) {
  v1::ScoreResponse out;
  *out.mutable_correlation() = c.request.correlation();
  const core::Calibration& cal = c.calibration;
  out.set_sq_norm(r.score.sq_norm);
  out.set_diff(r.score.diff);
  out.set_sq_norm_term((r.score.sq_norm - cal.sq_norm.center) / cal.sq_norm.scale);
  out.set_diff_term((r.score.diff - cal.diff.center) / cal.diff.scale);
  out.set_score(core::CalibratedScore(cal, r.score));
  const double threshold = c.request.has_threshold() ? c.request.threshold() : cal.image_threshold;
  out.set_threshold(threshold);
  out.set_anomalous(out.score() > threshold);
  out.set_model(c.model->name);
  out.set_version(c.model->version);
  out.set_steps(r.steps);
  out.set_tiles(1);
  for (int b : r.batch_sizes) out.add_batch_sizes(b);
  v1::Timings* t = out.mutable_timings();
  t->set_queue_us(Micros(r.queue_time));
  t->set_compute_us(Micros(r.compute_time));

  const int lh = static_cast<int>(r.norm_map.dim(0)), lw = static_cast<int>(r.norm_map.dim(1));
  const cv::Mat latent(lh, lw, CV_32F, const_cast<float*>(r.norm_map.data()));
  // Regions: connected components of the thresholded map at the network resolution, boxes
  // scaled to original-image pixels.
  cv::Mat network;
  cv::resize(latent, network, cv::Size(c.model->input.width, c.model->input.height), 0, 0,
             cv::INTER_LINEAR);
  cv::Mat mask = network > static_cast<float>(cal.pixel_threshold);
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  const double sx = static_cast<double>(c.original_width) / network.cols;
  const double sy = static_cast<double>(c.original_height) / network.rows;
  for (int i = 1; i < n; ++i) {
    v1::DefectRegion* d = out.add_regions();
    const int x = stats.at<int>(i, cv::CC_STAT_LEFT), y = stats.at<int>(i, cv::CC_STAT_TOP);
    const int w = stats.at<int>(i, cv::CC_STAT_WIDTH), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    d->mutable_box()->set_x(c.offset_x + static_cast<int>(std::floor(x * sx)));
    d->mutable_box()->set_y(c.offset_y + static_cast<int>(std::floor(y * sy)));
    d->mutable_box()->set_width(std::max(1, static_cast<int>(std::ceil(w * sx))));
    d->mutable_box()->set_height(std::max(1, static_cast<int>(std::ceil(h * sy))));
    d->set_area(static_cast<int64_t>(std::llround(stats.at<int>(i, cv::CC_STAT_AREA) * sx * sy)));
    double peak = 0;
    cv::minMaxLoc(network, nullptr, &peak, nullptr, nullptr, labels == i);
    d->set_peak(static_cast<float>(peak));
  }
  std::sort(
      out.mutable_regions()->begin(), out.mutable_regions()->end(),
      [](const v1::DefectRegion& a, const v1::DefectRegion& b) { return a.peak() > b.peak(); });

  const v1::MapKind kind = c.request.map();
  if (kind == v1::MAP_LATENT) SetMap(latent, out.mutable_map());
  if (kind == v1::MAP_NETWORK) SetMap(network, out.mutable_map());
  if (kind == v1::MAP_ORIGINAL || kind == v1::MAP_HEATMAP_PNG || kind == v1::MAP_MASK_PNG) {
    cv::Mat original;
    cv::resize(latent, original, cv::Size(c.original_width, c.original_height), 0, 0,
               cv::INTER_LINEAR);
    if (kind == v1::MAP_ORIGINAL) {
      SetMap(original, out.mutable_map());
    } else {
      cv::Mat img;
      if (kind == v1::MAP_MASK_PNG) {
        img = original > static_cast<float>(cal.pixel_threshold);
      } else {
        // 0 at zero, 128 at the pixel threshold, saturating at twice the threshold.
        cv::Mat scaled;
        original.convertTo(scaled, CV_8U, 128.0 / std::max(cal.pixel_threshold, 1e-12));
        cv::applyColorMap(scaled, img, cv::COLORMAP_JET);
      }
      std::vector<uint8_t> png;
      try {
        cv::imencode(".png", img, png);
      } catch (const cv::Exception& e) {
        return absl::InternalError(absl::StrCat("encoding the map: ", e.what()));
      }
      out.set_map_png(png.data(), png.size());
    }
  }
  t->set_total_us(Micros(absl::Now() - c.received));
  return out;
}

}  // namespace

absl::Status StartScore(const ModelRepository& repo, const v1::ScoreRequest& request,
                        const ScoringLimits& limits, absl::Time deadline,
                        std::shared_ptr<std::atomic<bool>> cancelled, absl::Time received,
                        ScoreCallback done) {
  if (request.model().empty()) return absl::InvalidArgumentError("model is required");
  if (request.version() < 0) return absl::InvalidArgumentError("version must be >= 0");
  auto c = std::make_shared<Context>();
  absl::StatusOr<std::shared_ptr<ServedModel>> model =
      repo.Find(request.model(), request.version());
  if (!model.ok()) return model.status();
  c->model = *std::move(model);
  const v1::ModelConfig& config = c->model->bundle.config;

  c->steps = request.steps() == 0 ? config.diffusion().default_steps() : request.steps();
  const auto& allowed = config.diffusion().allowed_steps();
  if (std::find(allowed.begin(), allowed.end(), c->steps) == allowed.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("steps ", request.steps(), " is not allowed by model '", request.model(),
                     "' (allowed: ", absl::StrJoin(allowed, ", "), ")"));
  }
  if (!request.category().empty() &&
      std::find(config.categories().begin(), config.categories().end(), request.category()) ==
          config.categories().end()) {
    return absl::NotFoundError(
        absl::StrCat("model '", request.model(), "' has no category '", request.category(),
                     "' (it has: ", absl::StrJoin(config.categories(), ", "), ")"));
  }
  absl::StatusOr<core::Calibration> cal =
      bundle::FindCalibration(config, c->steps, request.category());
  if (!cal.ok()) return absl::FailedPreconditionError(cal.status().message());
  c->calibration = *cal;
  if (request.has_threshold() && !std::isfinite(request.threshold())) {
    return absl::InvalidArgumentError("threshold must be finite");
  }
  if (!v1::MapKind_IsValid(request.map())) {
    return absl::InvalidArgumentError(absl::StrCat("map ", request.map(), " is not a MapKind"));
  }
  if (request.tiling().enabled()) {
    return absl::UnimplementedError("tiling is not available in this server version");
  }

  absl::StatusOr<preprocess::Image> image = DecodeRequestImage(request.image(), limits);
  if (!image.ok()) return image.status();
  image = Crop(*std::move(image), request.region());
  if (!image.ok()) return image.status();
  c->original_width = image->width;
  c->original_height = image->height;
  if (request.region().width() > 0) {
    c->offset_x = request.region().x();
    c->offset_y = request.region().y();
  }
  const preprocess::InputSpec& spec = c->model->input;
  core::Task task;
  task.image = core::Tensor({spec.channels(), spec.height, spec.width});
  if (absl::Status s = preprocess::Preprocess(*image, spec, task.image.data()); !s.ok()) return s;
  image->data.clear();
  image->data.shrink_to_fit();

  c->request = request;
  c->request.clear_image();
  c->received = received;
  task.steps = c->steps;
  task.deadline = deadline;
  task.cancelled = std::move(cancelled);
  task.done = [c, done = std::move(done)](absl::StatusOr<core::TaskResult> r) {
    if (!r.ok()) return done(r.status());
    done(BuildResponse(*c, *r));
  };
  return c->model->scheduler->Submit(std::move(task));
}

}  // namespace invad::server

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

#include "core/base/mutex.h"
#include "core/base/status_macros.h"
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

constexpr int kMaxTiles = 1024;
// Regions returned per image (highest peaks first); a noisy map must not make answers huge.
constexpr int kMaxRegions = 64;

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

struct Tile {
  int x = 0, y = 0;       // in the scored image (the region, if any)
  preprocess::Pose pose;  // of the tile's network input (pose-normalising models)
  core::TaskResult result;
};

// One request's state, shared by its tiles' callbacks.
struct Context {
  std::shared_ptr<ServedModel> model;
  v1::ScoreRequest request;  // without the image bytes
  core::Calibration calibration;
  int steps = 0;
  int original_width = 0, original_height = 0;  // of the scored image (the region if any)
  int offset_x = 0, offset_y = 0;               // of the region in the full image
  int tile_width = 0, tile_height = 0;          // = the scored image without tiling
  absl::Time received;
  ScoreCallback done;

  core::Mutex mu;
  std::vector<Tile> tiles ABSL_GUARDED_BY(mu);
  int pending ABSL_GUARDED_BY(mu) = 0;
  absl::Status first_error ABSL_GUARDED_BY(mu);
  bool abandoned ABSL_GUARDED_BY(mu) = false;  // StartScore already answered with an error
};

// Max-merges each tile's latent map, resized to the tile's footprint at `scale` (output pixels per
// original pixel in x and y), into one map of the scored image.
absl::StatusOr<cv::Mat> Stitch(const Context& c, const std::vector<Tile>& tiles, double sx,
                               double sy) {
  const int w = std::max(1, static_cast<int>(std::lround(c.original_width * sx)));
  const int h = std::max(1, static_cast<int>(std::lround(c.original_height * sy)));
  cv::Mat out(h, w, CV_32F, cv::Scalar(0));
  for (const Tile& t : tiles) {
    const core::Tensor& m = t.result.norm_map;
    cv::Mat latent(static_cast<int>(m.dim(0)), static_cast<int>(m.dim(1)), CV_32F,
                   const_cast<float*>(m.data()));
    const int x0 = static_cast<int>(std::lround(t.x * sx));
    const int y0 = static_cast<int>(std::lround(t.y * sy));
    const int x1 = std::min(w, static_cast<int>(std::lround((t.x + c.tile_width) * sx)));
    const int y1 = std::min(h, static_cast<int>(std::lround((t.y + c.tile_height) * sy)));
    if (x1 <= x0 || y1 <= y0) continue;
    if (t.pose.applied) {
      // The map is of the canonical pose: back into the tile's frame at the network resolution,
      // then averaged down where the footprint is smaller (the latent-scale map).
      cv::Mat canonical, framed(t.pose.height, t.pose.width, CV_32F);
      cv::resize(latent, canonical, framed.size(), 0, 0, cv::INTER_LINEAR);
      INVAD_RETURN_IF_ERROR(preprocess::MapToImageFrame(
          t.pose, canonical.ptr<float>(), canonical.cols, canonical.rows, framed.ptr<float>()));
      if (x1 - x0 < framed.cols && y1 - y0 < framed.rows) {
        cv::resize(framed, latent, cv::Size(x1 - x0, y1 - y0), 0, 0, cv::INTER_AREA);
      } else {
        latent = framed;
      }
    }
    cv::Mat resized;
    cv::resize(latent, resized, cv::Size(x1 - x0, y1 - y0), 0, 0, cv::INTER_LINEAR);
    cv::Mat roi = out(cv::Rect(x0, y0, x1 - x0, y1 - y0));
    cv::max(roi, resized, roi);
  }
  return out;
}

absl::StatusOr<v1::ScoreResponse> BuildResponse(const Context& c, const std::vector<Tile>& tiles) {
  v1::ScoreResponse out;
  *out.mutable_correlation() = c.request.correlation();
  const core::Calibration& cal = c.calibration;
  // The image score is the highest tile score; its components come from that tile.
  const Tile* best = nullptr;
  double best_score = 0;
  absl::Duration queue, compute;
  for (const Tile& t : tiles) {
    const double score = core::CalibratedScore(cal, t.result.score, t.result.norm_map.data());
    if (best == nullptr || score > best_score) {
      best = &t;
      best_score = score;
    }
    queue = std::max(queue, t.result.queue_time);
    compute += t.result.compute_time;
  }
  const core::TaskResult& r = best->result;
  out.set_sq_norm(r.score.sq_norm);
  out.set_diff(r.score.diff);
  out.set_sq_norm_term((r.score.sq_norm - cal.sq_norm.center) / cal.sq_norm.scale);
  out.set_diff_term((r.score.diff - cal.diff.center) / cal.diff.scale);
  out.set_max_norm(r.score.max_norm);
  if (cal.max_norm.scale > 0)
    out.set_max_norm_term((r.score.max_norm - cal.max_norm.center) / cal.max_norm.scale);
  out.set_score_rule(core::ScoreRuleName(cal.rule));
  if (!cal.position.empty() && cal.positional_max.scale > 0) {
    const double p = core::PositionalMax(cal.position, r.norm_map.data());
    out.set_positional_max(p);
    out.set_positional_max_term((p - cal.positional_max.center) / cal.positional_max.scale);
  }
  out.set_score(best_score);
  const double threshold = c.request.has_threshold() ? c.request.threshold() : cal.image_threshold;
  out.set_threshold(threshold);
  out.set_anomalous(out.score() > threshold);
  out.set_model(c.model->name);
  out.set_version(c.model->version);
  out.set_steps(r.steps);
  out.set_tiles(static_cast<int>(tiles.size()));
  for (int b : r.batch_sizes) out.add_batch_sizes(b);
  v1::Timings* t = out.mutable_timings();
  t->set_queue_us(Micros(queue));
  t->set_compute_us(Micros(compute));

  // Maps at three scales of the scored image: latent cells, network pixels, original pixels.
  const double nx = static_cast<double>(c.model->input.width) / c.tile_width;
  const double ny = static_cast<double>(c.model->input.height) / c.tile_height;
  INVAD_ASSIGN_OR_RETURN(const cv::Mat network, Stitch(c, tiles, nx, ny));
  // Regions: connected components of the thresholded map at the network scale, boxes in
  // original-image pixels.
  cv::Mat mask = network > static_cast<float>(cal.pixel_threshold);
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  // Peaks of every component in one pass over the map.
  std::vector<float> peaks(n, 0.0f);
  for (int y = 0; y < network.rows; ++y) {
    const int* l = labels.ptr<int>(y);
    const float* v = network.ptr<float>(y);
    for (int x = 0; x < network.cols; ++x) {
      if (l[x] > 0) peaks[l[x]] = std::max(peaks[l[x]], v[x]);
    }
  }
  // The kMaxRegions with the highest peaks, highest first.
  std::vector<int> order;
  for (int i = 1; i < n; ++i) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return peaks[a] > peaks[b]; });
  if (order.size() > static_cast<size_t>(kMaxRegions)) order.resize(kMaxRegions);
  for (int i : order) {
    v1::DefectRegion* d = out.add_regions();
    const int x = stats.at<int>(i, cv::CC_STAT_LEFT), y = stats.at<int>(i, cv::CC_STAT_TOP);
    const int w = stats.at<int>(i, cv::CC_STAT_WIDTH), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    d->mutable_box()->set_x(c.offset_x + static_cast<int>(std::floor(x / nx)));
    d->mutable_box()->set_y(c.offset_y + static_cast<int>(std::floor(y / ny)));
    d->mutable_box()->set_width(std::max(1, static_cast<int>(std::ceil(w / nx))));
    d->mutable_box()->set_height(std::max(1, static_cast<int>(std::ceil(h / ny))));
    d->set_area(static_cast<int64_t>(std::llround(stats.at<int>(i, cv::CC_STAT_AREA) / (nx * ny))));
    d->set_peak(peaks[i]);
  }

  const v1::MapKind kind = c.request.map();
  if (kind == v1::MAP_LATENT) {
    const core::Tensor& m = tiles.front().result.norm_map;
    INVAD_ASSIGN_OR_RETURN(const cv::Mat latent,
                           Stitch(c, tiles, static_cast<double>(m.dim(1)) / c.tile_width,
                                  static_cast<double>(m.dim(0)) / c.tile_height));
    SetMap(latent, out.mutable_map());
  }
  if (kind == v1::MAP_NETWORK) SetMap(network, out.mutable_map());
  if (kind == v1::MAP_ORIGINAL || kind == v1::MAP_HEATMAP_PNG || kind == v1::MAP_MASK_PNG) {
    cv::Mat original;
    cv::resize(network, original, cv::Size(c.original_width, c.original_height), 0, 0,
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

// Tile origins along one axis: from 0 in steps of (tile − overlap), the last aligned to the end.
std::vector<int> TileOrigins(int length, int tile, int overlap) {
  std::vector<int> out;
  const int stride = tile - overlap;
  for (int x = 0;; x += stride) {
    if (x + tile >= length) {
      out.push_back(std::max(0, length - tile));
      break;
    }
    out.push_back(x);
  }
  return out;
}

}  // namespace

absl::StatusOr<PreparedRequest> PrepareRequest(const v1::ScoreRequest& request,
                                               const v1::ModelConfig& config,
                                               const preprocess::InputSpec& spec,
                                               const ScoringLimits& limits) {
  PreparedRequest p;
  p.steps = request.steps() == 0 ? config.diffusion().default_steps() : request.steps();
  const auto& allowed = config.diffusion().allowed_steps();
  if (std::find(allowed.begin(), allowed.end(), p.steps) == allowed.end()) {
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
      bundle::FindCalibration(config, p.steps, request.category());
  if (!cal.ok()) return absl::FailedPreconditionError(cal.status().message());
  p.calibration = *cal;
  if (request.has_threshold() && !std::isfinite(request.threshold())) {
    return absl::InvalidArgumentError("threshold must be finite");
  }
  if (!v1::MapKind_IsValid(request.map())) {
    return absl::InvalidArgumentError(absl::StrCat("map ", request.map(), " is not a MapKind"));
  }
  absl::StatusOr<preprocess::Image> image = DecodeRequestImage(request.image(), limits);
  if (!image.ok()) return image.status();
  image = Crop(*std::move(image), request.region());
  if (!image.ok()) return image.status();
  p.original_width = image->width;
  p.original_height = image->height;
  if (request.region().width() > 0) {
    p.offset_x = request.region().x();
    p.offset_y = request.region().y();
  }
  // Tiles: the whole (region of the) image, or overlapping squares of tile_size pixels.
  std::vector<int> xs{0}, ys{0};
  p.tile_width = image->width;
  p.tile_height = image->height;
  if (request.tiling().enabled()) {
    const v1::Tiling& tiling = request.tiling();
    const int size =
        tiling.tile_size() == 0 ? std::max(spec.width, spec.height) : tiling.tile_size();
    if (size < 0 || tiling.overlap() < 0 || tiling.overlap() >= size) {
      return absl::InvalidArgumentError(
          absl::StrCat("tiling needs tile_size > overlap >= 0, got tile_size ", tiling.tile_size(),
                       " and overlap ", tiling.overlap()));
    }
    p.tile_width = std::min(size, image->width);
    p.tile_height = std::min(size, image->height);
    xs = TileOrigins(image->width, p.tile_width, tiling.overlap());
    ys = TileOrigins(image->height, p.tile_height, tiling.overlap());
    if (xs.size() * ys.size() > static_cast<size_t>(kMaxTiles)) {
      return absl::InvalidArgumentError(absl::StrCat("tiling gives ", xs.size() * ys.size(),
                                                     " tiles; at most ", kMaxTiles,
                                                     " (use larger tiles or less overlap)"));
    }
  }
  for (int y : ys) {
    for (int x : xs) {
      v1::Rect r;
      r.set_x(x);
      r.set_y(y);
      r.set_width(p.tile_width);
      r.set_height(p.tile_height);
      const bool whole = xs.size() == 1 && ys.size() == 1 && p.tile_width == image->width &&
                         p.tile_height == image->height;
      absl::StatusOr<preprocess::Image> tile = whole ? *image : Crop(*image, r);
      if (!tile.ok()) return tile.status();
      core::Tensor input({spec.channels(), spec.height, spec.width});
      preprocess::Pose pose;
      if (absl::Status s = preprocess::Preprocess(*tile, spec, input.data(), &pose); !s.ok())
        return s;
      p.inputs.push_back(std::move(input));
      p.poses.push_back(pose);
      p.origins.emplace_back(x, y);
    }
  }
  return p;
}

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
  absl::StatusOr<PreparedRequest> prepared =
      PrepareRequest(request, c->model->bundle.config, c->model->input, limits);
  if (!prepared.ok()) return prepared.status();
  c->steps = prepared->steps;
  c->calibration = prepared->calibration;
  c->original_width = prepared->original_width;
  c->original_height = prepared->original_height;
  c->offset_x = prepared->offset_x;
  c->offset_y = prepared->offset_y;
  c->tile_width = prepared->tile_width;
  c->tile_height = prepared->tile_height;
  std::vector<core::Task> tasks;
  std::vector<Tile> placed;
  for (size_t i = 0; i < prepared->inputs.size(); ++i) {
    core::Task task;
    task.image = std::move(prepared->inputs[i]);
    tasks.push_back(std::move(task));
    placed.push_back(
        Tile{prepared->origins[i].first, prepared->origins[i].second, prepared->poses[i], {}});
  }

  c->request = request;
  c->request.clear_image();
  c->received = received;
  c->done = std::move(done);
  {
    core::MutexLock l(&c->mu);
    c->pending = static_cast<int>(tasks.size());
    c->tiles.resize(tasks.size());
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    core::Task& task = tasks[i];
    task.steps = c->steps;
    task.deadline = deadline;
    task.cancelled = cancelled;
    task.done = [c, i, tile = placed[i]](absl::StatusOr<core::TaskResult> r) {
      std::vector<Tile> tiles;
      absl::Status error;
      {
        core::MutexLock l(&c->mu);
        if (r.ok()) {
          c->tiles[i] = tile;
          c->tiles[i].result = *std::move(r);
        } else if (c->first_error.ok()) {
          c->first_error = r.status();
        }
        if (--c->pending > 0 || c->abandoned) return;
        error = c->first_error;
        tiles = std::move(c->tiles);
      }
      if (!error.ok()) return c->done(error);
      c->done(BuildResponse(*c, tiles));
    };
    if (absl::Status s = c->model->scheduler->Submit(std::move(task)); !s.ok()) {
      // Tiles already queued still run (nobody waits for them); this request answers now.
      core::MutexLock l(&c->mu);
      c->abandoned = true;
      c->pending -= static_cast<int>(tasks.size() - i);
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace invad::server

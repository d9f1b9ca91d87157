#include "server/model_repository.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

#include "core/batching/runner.h"
#include "core/runtime/runtime.h"
#include "core/scoring/calibration.h"

namespace invad::server {
namespace fs = std::filesystem;

ModelRepository::ModelRepository(RepositoryOptions options) : options_(std::move(options)) {}

ModelRepository::~ModelRepository() { Shutdown(absl::ZeroDuration()); }

absl::Status ModelRepository::LoadAll() { return Reload().status(); }

absl::StatusOr<ReloadSummary> ModelRepository::Reload() {
  core::MutexLock reload_lock(&reload_mu_);  // one reload at a time
  std::error_code ec;
  if (!fs::is_directory(options_.root, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model repository ", options_.root, " is not a readable folder"));
  }
  // What should serve: the highest versions_per_model versions of every model folder.
  std::map<std::string, std::vector<int>> plan;
  for (const auto& e : fs::directory_iterator(options_.root, ec)) {
    if (!e.is_directory() || e.path().filename().string().rfind('.', 0) == 0) continue;
    absl::StatusOr<std::vector<int>> versions = bundle::ListVersions(e.path().string());
    if (!versions.ok() || versions->empty()) continue;  // not a model folder
    std::vector<int> keep = *versions;
    if (static_cast<int>(keep.size()) > options_.versions_per_model) {
      keep.erase(keep.begin(), keep.end() - options_.versions_per_model);
    }
    plan.emplace(e.path().filename().string(), std::move(keep));
  }
  if (ec) return absl::FailedPreconditionError(absl::StrCat(options_.root, ": ", ec.message()));

  ReloadSummary summary;
  std::vector<std::pair<std::string, int>> to_load;
  {
    core::MutexLock l(&mu_);
    for (const auto& [name, versions] : plan) {
      for (int v : versions) {
        auto m = models_.find(name);
        const bool known = m != models_.end() && m->second.count(v) > 0;
        // New versions load; failed ones are retried (their files may have been fixed).
        if (!known || m->second.at(v).state == v1::VersionInfo::FAILED) {
          models_[name][v] = Entry();  // LOADING
          to_load.emplace_back(name, v);
        }
      }
    }
  }
  // Load new versions first: older ones keep serving meanwhile.
  for (const auto& [name, v] : to_load) {
    const std::string dir = (fs::path(options_.root) / name / std::to_string(v)).string();
    absl::StatusOr<std::shared_ptr<ServedModel>> m = Load(name, v, dir);
    core::MutexLock l(&mu_);
    Entry& e = models_[name][v];
    if (m.ok()) {
      e.state = v1::VersionInfo::READY;
      e.model = *std::move(m);
      summary.loaded.push_back(absl::StrCat(name, "/", v));
    } else {
      e.state = v1::VersionInfo::FAILED;
      e.error = std::string(m.status().message());
      summary.failed.push_back(absl::StrCat(name, "/", v, ": ", e.error));
    }
  }
  // Then retire what no longer should serve: out of Find() at once, drained in the background of
  // this call (in-flight requests hold the model and finish).
  std::vector<std::shared_ptr<ServedModel>> retired;
  {
    core::MutexLock l(&mu_);
    for (auto m = models_.begin(); m != models_.end();) {
      auto wanted = plan.find(m->first);
      for (auto v = m->second.begin(); v != m->second.end();) {
        const bool keep = wanted != plan.end() &&
                          std::find(wanted->second.begin(), wanted->second.end(), v->first) !=
                              wanted->second.end();
        if (keep) {
          ++v;
          continue;
        }
        if (v->second.model) retired.push_back(v->second.model);
        summary.unloaded.push_back(absl::StrCat(m->first, "/", v->first));
        v = m->second.erase(v);
      }
      m = m->second.empty() ? models_.erase(m) : std::next(m);
    }
  }
  std::vector<std::thread> drains;
  for (auto& m : retired) {
    drains.emplace_back([m, grace = options_.unload_grace] { m->scheduler->Shutdown(grace); });
  }
  for (auto& t : drains) t.join();
  retired.clear();  // the last references, if no request holds one, go here (not on a scheduler)
  return summary;
}

absl::StatusOr<std::shared_ptr<ServedModel>> ModelRepository::Load(const std::string& name,
                                                                   int version,
                                                                   const std::string& dir) {
  absl::StatusOr<bundle::LoadedModel> loaded = bundle::LoadModel(dir, options_.device);
  if (!loaded.ok()) return loaded.status();
  auto m = std::make_shared<ServedModel>();
  m->name = name;
  m->version = version;
  m->bundle = loaded->bundle;
  m->input = loaded->input;
  m->latent = loaded->pipeline->latent_shape();
  m->device = options_.device;
  const core::Shape input = {m->input.channels(), m->input.height, m->input.width};
  std::vector<std::unique_ptr<core::BatchRunner>> runners;
  runners.push_back(core::MakePipelineRunner(std::move(loaded->pipeline), input));
  for (int i = 1; i < options_.scheduler.instances; ++i) {
    absl::StatusOr<std::unique_ptr<core::Pipeline>> p =
        bundle::BuildPipeline(m->bundle.config, dir, options_.device);
    if (!p.ok()) return p.status();
    runners.push_back(core::MakePipelineRunner(*std::move(p), input));
  }
  if (options_.observer_factory) m->observer = options_.observer_factory(name, version);
  core::RuntimeOptions ro;
  ro.device = options_.device;
  absl::StatusOr<core::HostAllocator*> allocator = core::HostAllocatorFor(ro, options_.host_memory);
  if (!allocator.ok()) return allocator.status();
  absl::StatusOr<std::unique_ptr<core::ModelScheduler>> s = core::ModelScheduler::Create(
      options_.scheduler, std::move(runners), m->observer.get(), &core::RealClock(), *allocator);
  if (!s.ok()) return s.status();
  m->scheduler = *std::move(s);
  if (absl::Status w = WarmUp(*m); !w.ok()) {
    return absl::InternalError(absl::StrCat("warm-up of ", name, "/", version, ": ", w.message()));
  }
  return m;
}

// One batch per preferred size (or 1 and max_batch_size), so the first requests do not pay for
// lazy initialisation (allocator growth, oneDNN primitives, bf16 weight casts).
absl::Status ModelRepository::WarmUp(ServedModel& m) {
  const core::SchedulerOptions& o = m.scheduler->options();
  std::vector<int> sizes = o.preferred_batch_sizes;
  if (sizes.empty()) sizes = {1, o.max_batch_size};
  const int steps = m.bundle.config.diffusion().default_steps();
  for (int size : sizes) {
    core::Mutex mu;
    core::CondVar cv;
    int pending = size;
    absl::Status first_error;
    for (int i = 0; i < size; ++i) {
      core::Task t;
      t.image = core::Tensor({m.input.channels(), m.input.height, m.input.width});
      t.steps = steps;
      t.deadline = absl::Now() + absl::Minutes(5);
      t.done = [&](absl::StatusOr<core::TaskResult> r) {
        core::MutexLock l(&mu);
        if (!r.ok() && first_error.ok()) first_error = r.status();
        if (--pending == 0) cv.notify_all();
      };
      if (absl::Status s = m.scheduler->Submit(std::move(t)); !s.ok()) {
        core::MutexLock l(&mu);
        if (first_error.ok()) first_error = s;
        --pending;
      }
    }
    core::MutexLock l(&mu);
    cv.wait(mu, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return pending == 0; });
    if (!first_error.ok()) return first_error;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<ServedModel>> ModelRepository::Find(const std::string& name,
                                                                   int64_t version) const {
  core::MutexLock l(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
  if (version == 0) {
    for (auto v = it->second.rbegin(); v != it->second.rend(); ++v) {
      if (v->second.state == v1::VersionInfo::READY) return v->second.model;
    }
    return absl::UnavailableError(absl::StrCat("model '", name, "' has no ready version"));
  }
  auto v = it->second.find(static_cast<int>(version));
  if (v == it->second.end()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
  }
  if (v->second.state != v1::VersionInfo::READY) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' version ", version, " is ",
                                               v1::VersionInfo::State_Name(v->second.state),
                                               v->second.error.empty() ? "" : ": ",
                                               v->second.error));
  }
  return v->second.model;
}

namespace {

void FillVersion(const ServedModel& m, v1::VersionInfo* info) {
  const v1::ModelConfig& c = m.bundle.config;
  info->set_input_width(c.input().width());
  info->set_input_height(c.input().height());
  info->set_input_channels(m.input.channels());
  for (int k : c.diffusion().allowed_steps()) info->add_allowed_steps(k);
  info->set_default_steps(c.diffusion().default_steps());
  for (const std::string& cat : c.categories()) info->add_categories(cat);
  for (const v1::CalibrationEntry& e : c.calibration()) {
    v1::CalibrationSummary* s = info->add_calibration();
    s->set_steps(e.steps());
    s->set_category(e.category());
    s->set_image_threshold(e.image_threshold());
    s->set_pixel_threshold(e.pixel_threshold());
    s->set_target_fpr(e.target_fpr());
    s->set_fpr_resolution(e.fpr_resolution());
    s->set_num_images(e.num_images());
    s->set_score_rule(core::ScoreRuleName(bundle::ToCalibration(e).rule));
  }
  info->set_device(m.device);
  info->set_precision(
      absl::AsciiStrToUpper(core::PrecisionName(bundle::ServedPrecision(c.precision(), m.device))));
  info->set_description(c.description());
}

}  // namespace

v1::ModelInfo ModelRepository::InfoLocked(const std::string& name) const {
  v1::ModelInfo info;
  info.set_name(name);
  auto it = models_.find(name);
  if (it == models_.end()) return info;
  for (const auto& [version, e] : it->second) {
    v1::VersionInfo* v = info.add_versions();
    v->set_version(version);
    v->set_state(e.state);
    v->set_error(e.error);
    if (e.model) FillVersion(*e.model, v);
  }
  return info;
}

bool ModelRepository::HasModel(const std::string& name) const {
  core::MutexLock l(&mu_);
  return models_.count(name) > 0;
}

v1::ListModelsResponse ModelRepository::List() const {
  core::MutexLock l(&mu_);
  v1::ListModelsResponse r;
  for (const auto& [name, versions] : models_) *r.add_models() = InfoLocked(name);
  return r;
}

absl::StatusOr<v1::ModelInfo> ModelRepository::Get(const std::string& name, int64_t version) const {
  core::MutexLock l(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
  v1::ModelInfo info = InfoLocked(name);
  if (version == 0) return info;
  v1::ModelInfo one;
  one.set_name(name);
  for (const v1::VersionInfo& v : info.versions()) {
    if (v.version() == version) *one.add_versions() = v;
  }
  if (one.versions().empty()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
  }
  return one;
}

bool ModelRepository::Ready() const {
  core::MutexLock l(&mu_);
  bool any = false;
  for (const auto& [name, versions] : models_) {
    for (const auto& [v, e] : versions) {
      if (e.state == v1::VersionInfo::LOADING || e.state == v1::VersionInfo::WARMING) return false;
      any |= e.state == v1::VersionInfo::READY;
    }
  }
  return any;
}

void ModelRepository::Shutdown(absl::Duration drain) {
  std::vector<std::shared_ptr<ServedModel>> models;
  {
    core::MutexLock l(&mu_);
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e.model) models.push_back(e.model);
        if (e.state == v1::VersionInfo::READY) e.state = v1::VersionInfo::UNLOADING;
      }
    }
  }
  // Drain concurrently: every scheduler gets the same grace period.
  std::vector<std::thread> threads;
  for (auto& m : models) {
    threads.emplace_back([m, drain] { m->scheduler->Shutdown(drain); });
  }
  for (auto& t : threads) t.join();
}

}  // namespace invad::server

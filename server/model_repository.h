// File: server/model_repository.h
//
// The models invad-server serves, from a model repository `<root>/<name>/<version>/` (bundle
// layout, docs/bundles.md). Each served version gets its own ModelScheduler (the dynamic batcher)
// and is warmed up (one batch per preferred size, or sizes 1 and max_batch_size) before it turns
// READY. A bundle that fails to load is reported (state FAILED with the reason) and the rest
// serve.
//
//   ModelRepository repo(options);
//   repo.LoadAll();                         // blocking: load + warm up
//   auto m = repo.Find("demo", 0);          // latest READY version
//   (*m)->scheduler->Submit(task);
//
// Thread-safe. Find() hands out shared_ptrs, so a version being replaced or removed finishes the
// requests already holding it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "bundle/bundle.h"
#include "core/base/mutex.h"
#include "core/batching/scheduler.h"
#include "core/runtime/runtime.h"
#include "invad/v1/inference.pb.h"

namespace invad::server {

struct ServedModel {
  std::string name;
  int version = 0;
  bundle::Bundle bundle;
  preprocess::InputSpec input;
  core::LatentShape latent;
  std::string device;
  std::unique_ptr<core::SchedulerObserver> observer;  // before the scheduler: outlives it
  std::unique_ptr<core::ModelScheduler> scheduler;
};

// What a Reload() changed ("name/version" each; failed ones with the reason).
struct ReloadSummary {
  std::vector<std::string> loaded, unloaded, failed;
};

struct RepositoryOptions {
  std::string root;
  std::string device = "cpu";
  // Host memory of batch buffers: auto (pinned on cuda, ordinary on cpu), pageable, or pinned
  // (cuda only: on cpu every model fails to load with InvalidArgument).
  core::HostMemory host_memory = core::HostMemory::kAuto;
  core::SchedulerOptions scheduler;
  // Versions served per model: the highest N. Default 1 (TF Serving's "latest" policy).
  int versions_per_model = 1;
  // Time a retired version (removed, or superseded by a newer one) gets to finish its queued work.
  absl::Duration unload_grace = absl::Seconds(30);
  // Creates the metrics observer of one model version (null: none).
  std::function<std::unique_ptr<core::SchedulerObserver>(const std::string& name, int version)>
      observer_factory;
};

class ModelRepository {
 public:
  explicit ModelRepository(RepositoryOptions options);
  ~ModelRepository();

  // Loads and warms up every model folder under the root. FailedPrecondition/NotFound only when
  // the root itself cannot be read; individual bundles that fail are recorded as FAILED.
  absl::Status LoadAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Re-reads the root (SIGHUP, polling): loads new versions and models (and retries failed ones)
  // while the current ones serve, then retires versions no longer wanted (folder removed, or
  // beyond versions_per_model): they leave Find() at once and drain their queues within
  // unload_grace; requests already holding them complete. Blocks until done.
  absl::StatusOr<ReloadSummary> Reload() ABSL_LOCKS_EXCLUDED(mu_);

  // `version` 0 = the latest READY version. NotFound: unknown model or version; Unavailable: the
  // version exists but is not READY (loading, failed, unloading).
  absl::StatusOr<std::shared_ptr<ServedModel>> Find(const std::string& name, int64_t version) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether a model folder of that name was found (in any state).
  bool HasModel(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);

  v1::ListModelsResponse List() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::ModelInfo> Get(const std::string& name, int64_t version) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether at least one version is READY and none is still loading.
  bool Ready() const ABSL_LOCKS_EXCLUDED(mu_);

  // Stops every scheduler: queued work gets `drain` to finish, then UNAVAILABLE.
  void Shutdown(absl::Duration drain) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    v1::VersionInfo::State state = v1::VersionInfo::LOADING;
    std::string error;
    std::shared_ptr<ServedModel> model;  // set once READY
    v1::VersionInfo info;
  };
  absl::StatusOr<std::shared_ptr<ServedModel>> Load(const std::string& name, int version,
                                                    const std::string& dir);
  static absl::Status WarmUp(ServedModel& m);
  v1::ModelInfo InfoLocked(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RepositoryOptions options_;
  core::Mutex reload_mu_;
  mutable core::Mutex mu_;
  std::map<std::string, std::map<int, Entry>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace invad::server

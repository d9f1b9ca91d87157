// The hot folder behind `invad watch`: score each image file dropped into a folder exactly once,
// only once it is completely written, append the result to a CSV journal, then move the file to
// ok/, ng/ or error/ (docs/client.md#watch).
//
// Exactly once, across server restarts and crashes of the watcher:
// - a file is read only when no process holds it open for writing (a read lease, F_SETLEASE, is
//   granted only then; where leases are refused, inotify close events and --settle decide), and
//   the lease is held while reading, so a writer that reopens the file mid-read voids the read;
// - the result row is appended and fsync'ed before the file is moved; a watcher that crashed in
//   between finds the row on restart (same name and size) and moves the file without scoring it
//   again;
// - when the server is away or busy (any error but INVALID_ARGUMENT) the file stays where it is
//   and is retried with backoff; INVALID_ARGUMENT (not an image) sends it to error/.
#ifndef INVAD_CLIENT_CLI_WATCH_H_
#define INVAD_CLIENT_CLI_WATCH_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace invad::cli {

struct WatchOptions {
  std::filesystem::path hot;
  std::filesystem::path ok_dir;     // empty: <hot>/ok
  std::filesystem::path ng_dir;     // empty: <hot>/ng
  std::filesystem::path error_dir;  // empty: <hot>/error
  std::filesystem::path results;    // empty: <hot>/results.csv
  absl::Duration settle = absl::Milliseconds(500);
  absl::Duration poll_interval = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
  bool once = false;  // exit when nothing is left to do
};

struct WatchScore {
  std::string model;
  int64_t version = 0;
  double score = 0;
  double threshold = 0;
  bool anomalous = false;
};

// Scores one file's bytes; `name` is the file name (sent as the frame id).
using WatchScorer =
    std::function<absl::StatusOr<WatchScore>(const std::string& name, const std::string& bytes)>;

struct WatchSummary {
  int64_t scored = 0;    // rows appended (ok + ng + error)
  int64_t replayed = 0;  // moved from a row written before a crash, not scored again
  int64_t retries = 0;   // calls that failed with a retryable code
};

// The results CSV header; rows are file,bytes,model,version,score,threshold,verdict.
inline constexpr char kWatchCsvHeader[] = "file,bytes,model,version,score,threshold,verdict";

// Runs until `stop` is set (or, with `once`, until the folder is done). Errors: the folder is
// missing or a destination cannot be created.
absl::StatusOr<WatchSummary> RunWatch(const WatchOptions& options, const WatchScorer& scorer,
                                      const std::atomic<bool>& stop);

// Exposed for tests.
enum class WriteState { kClosed, kOpenForWriting, kUnknown };
// kClosed / kOpenForWriting from a read lease; kUnknown where the kernel refuses one (not the
// file's owner, or a file system without leases).
WriteState ProbeWriters(const std::filesystem::path& file);
// name -> (bytes, verdict) of the last row per name.
std::map<std::string, std::pair<uintmax_t, std::string>> ReadJournal(
    const std::filesystem::path& csv);

}  // namespace invad::cli

#endif  // INVAD_CLIENT_CLI_WATCH_H_

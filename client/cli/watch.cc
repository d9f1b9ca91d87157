#include "client/cli/watch.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <vector>

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "client/cli/files.h"

namespace invad::cli {
namespace fs = std::filesystem;

namespace {

// Takes a read lease on `fd` (opened read-only). A read lease is granted only while no process
// (this one included) has the file open for writing: kClosed (lease held), kOpenForWriting, or
// kUnknown where the kernel refuses leases (not the file's owner, no lease support).
WriteState TakeReadLease(int fd) {
  if (::fcntl(fd, F_SETLEASE, F_RDLCK) == 0) return WriteState::kClosed;
  return errno == EAGAIN ? WriteState::kOpenForWriting : WriteState::kUnknown;
}

}  // namespace

WriteState ProbeWriters(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return WriteState::kUnknown;
  const WriteState state = TakeReadLease(fd);
  if (state == WriteState::kClosed) ::fcntl(fd, F_SETLEASE, F_UNLCK);
  ::close(fd);
  return state;
}

std::map<std::string, std::pair<uintmax_t, std::string>> ReadJournal(const fs::path& csv) {
  std::map<std::string, std::pair<uintmax_t, std::string>> out;
  std::ifstream in(csv);
  std::string line;
  if (!std::getline(in, line)) return out;
  const std::vector<std::string> header = ParseCsvRow(line);
  auto column = [&](const char* name) -> int {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  };
  const int file = column("file"), bytes = column("bytes"), verdict = column("verdict");
  if (file < 0 || bytes < 0 || verdict < 0) return out;
  while (std::getline(in, line)) {
    const std::vector<std::string> row = ParseCsvRow(line);
    uintmax_t size = 0;
    if (static_cast<int>(row.size()) != static_cast<int>(header.size()) ||
        !absl::SimpleAtoi(row[bytes], &size)) {
      continue;  // a torn last line from a crash mid-append
    }
    out[row[file]] = {size, row[verdict]};
  }
  return out;
}

namespace {

// The whole file, read under a read lease. nullopt when a writer has the file open, or opened it
// while it was read (the lease broke): it is not complete yet.
std::optional<std::string> ReadComplete(const fs::path& file, WriteState* state) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  *state = TakeReadLease(fd);
  const bool leased = *state == WriteState::kClosed;
  if (*state == WriteState::kOpenForWriting) {
    ::close(fd);
    return std::nullopt;
  }
  std::string bytes;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) bytes.append(buf, static_cast<size_t>(n));
  bool intact = n == 0;
  if (leased) {
    intact = intact && ::fcntl(fd, F_GETLEASE) == F_RDLCK;  // F_UNLCK once a writer opened it
    ::fcntl(fd, F_SETLEASE, F_UNLCK);
  }
  ::close(fd);
  if (!intact) return std::nullopt;
  return bytes;
}

// Renames `file` into `dir` without replacing a file of the same name there (name-1.png, ...).
// Across file systems: copy to a hidden partial file, fsync, rename that, then remove the source.
absl::Status MoveInto(const fs::path& file, const fs::path& dir) {
  const std::string stem = file.stem().string(), ext = file.extension().string();
  for (int n = 0; n < 10000; ++n) {
    const fs::path dst =
        dir / (n == 0 ? file.filename().string() : absl::StrCat(stem, "-", n, ext));
    if (::renameat2(AT_FDCWD, file.c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) == 0) {
      return absl::OkStatus();
    }
    if (errno == EEXIST) continue;
    if (errno == EINVAL || errno == ENOSYS) {  // no RENAME_NOREPLACE on this file system
      std::error_code ec;
      if (fs::exists(dst, ec)) continue;
      fs::rename(file, dst, ec);
      if (ec) return absl::InternalError(absl::StrCat("rename: ", ec.message()));
      return absl::OkStatus();
    }
    if (errno != EXDEV) {
      return absl::InternalError(absl::StrCat("rename to ", dst.string(), ": ", strerror(errno)));
    }
    const fs::path partial = dir / ("." + file.filename().string() + ".partial");
    std::error_code ec;
    fs::copy_file(file, partial, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("copy: ", ec.message()));
    if (const int fd = ::open(partial.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    for (int m = n; m < 10000; ++m) {
      const fs::path d =
          dir / (m == 0 ? file.filename().string() : absl::StrCat(stem, "-", m, ext));
      if (::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, d.c_str(), RENAME_NOREPLACE) == 0 ||
          ((errno == EINVAL || errno == ENOSYS) && !fs::exists(d, ec) &&
           ::rename(partial.c_str(), d.c_str()) == 0)) {
        fs::remove(file, ec);
        return absl::OkStatus();
      }
      if (errno != EEXIST && errno != EINVAL && errno != ENOSYS) break;
    }
    return absl::InternalError(absl::StrCat("cannot move ", file.string(), " into ", dir.string()));
  }
  return absl::InternalError(absl::StrCat("no free name in ", dir.string()));
}

// Appends one row and makes it durable before the file moves.
absl::Status AppendRow(const fs::path& csv, const std::string& row) {
  const int fd = ::open(csv.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat(csv.string(), ": ", strerror(errno)));
  const bool ok =
      ::write(fd, row.data(), row.size()) == static_cast<ssize_t>(row.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("append to ", csv.string(), " failed"));
  return absl::OkStatus();
}

void SleepUnlessStopped(absl::Duration d, const std::atomic<bool>& stop) {
  const absl::Time end = absl::Now() + d;
  while (!stop && absl::Now() < end) {
    absl::SleepFor(std::min(end - absl::Now(), absl::Milliseconds(50)));
  }
}

struct Seen {
  uintmax_t size = 0;
  fs::file_time_type mtime;
  absl::Time stable_since;
};

}  // namespace

absl::StatusOr<WatchSummary> RunWatch(const WatchOptions& o, const WatchScorer& scorer,
                                      const std::atomic<bool>& stop) {
  std::error_code ec;
  if (!fs::is_directory(o.hot, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(o.hot.string(), " is not a folder"));
  }
  auto or_default = [&](const fs::path& p, const char* sub) { return p.empty() ? o.hot / sub : p; };
  const std::map<std::string, fs::path> dest = {{"ok", or_default(o.ok_dir, "ok")},
                                                {"ng", or_default(o.ng_dir, "ng")},
                                                {"error", or_default(o.error_dir, "error")}};
  for (const auto& [verdict, dir] : dest) {
    fs::create_directories(dir, ec);
    if (!fs::is_directory(dir, ec)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot create ", dir.string()));
    }
  }
  const fs::path results = or_default(o.results, "results.csv");
  if (!fs::exists(results, ec) || fs::file_size(results, ec) == 0) {
    if (absl::Status s = AppendRow(results, absl::StrCat(kWatchCsvHeader, "\n")); !s.ok()) return s;
  } else {
    // A crash mid-append leaves a torn last line: end it, so the next row starts on its own line.
    std::ifstream in(results, std::ios::binary | std::ios::ate);
    char last = '\n';
    if (in && in.tellg() > 0) {
      in.seekg(-1, std::ios::end);
      in.get(last);
    }
    if (last != '\n') {
      if (absl::Status s = AppendRow(results, "\n"); !s.ok()) return s;
    }
  }
  // Lease breaks are signalled with SIGIO, whose default action ends the process.
  std::signal(SIGIO, SIG_IGN);

  auto list = [&] {
    std::vector<fs::path> files;
    std::error_code lec;
    for (const auto& e : fs::directory_iterator(o.hot, lec)) {
      const std::string name = e.path().filename().string();
      if (!name.empty() && name[0] != '.' && e.is_regular_file(lec) && IsImageFile(e.path())) {
        files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    return files;
  };
  // Rows written for files that are still here: scored, then not moved (a crash, or a move that
  // failed). Only files present at start are matched against the journal: a file that arrives
  // later is new even when it reuses a name.
  std::map<std::string, std::pair<uintmax_t, std::string>> to_move;
  {
    const auto journal = ReadJournal(results);
    for (const fs::path& f : list()) {
      if (auto it = journal.find(f.filename().string()); it != journal.end()) {
        to_move.insert(*it);
      }
    }
  }
  // inotify: where leases are refused (another owner's files), a file a writer still holds is
  // recognised by its create/modify events without a close.
  const int inotify = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify >= 0) {
    ::inotify_add_watch(inotify, o.hot.c_str(),
                        IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO);
  }
  std::map<std::string, bool> writing;
  auto drain_events = [&] {
    if (inotify < 0) return;
    alignas(inotify_event) char buf[16384];
    for (ssize_t n; (n = ::read(inotify, buf, sizeof(buf))) > 0;) {
      for (char* p = buf; p < buf + n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(p);
        if (ev->len > 0) {
          if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
            writing[ev->name] = false;
          } else if (ev->mask & (IN_CREATE | IN_MODIFY)) {
            writing[ev->name] = true;
          }
        }
        p += sizeof(inotify_event) + ev->len;
      }
    }
  };

  WatchSummary summary;
  std::map<std::string, Seen> seen;
  absl::Duration backoff;
  while (!stop) {
    bool pending = false;
    drain_events();
    for (const fs::path& f : list()) {
      if (stop) break;
      const std::string name = f.filename().string();
      std::error_code fec;
      const uintmax_t size = fs::file_size(f, fec);
      const fs::file_time_type mtime = fs::last_write_time(f, fec);
      if (fec) continue;  // gone meanwhile
      if (auto it = to_move.find(name); it != to_move.end()) {
        if (it->second.first == size) {
          if (absl::Status s = MoveInto(f, dest.at(it->second.second)); !s.ok()) {
            std::fprintf(stderr, "invad watch: %s: %s\n", name.c_str(), s.ToString().c_str());
            pending = true;
            continue;
          }
          ++summary.replayed;
          std::printf("%s  %s (scored before a restart)\n", name.c_str(),
                      it->second.second.c_str());
          std::fflush(stdout);
          to_move.erase(it);
          continue;
        }
        to_move.erase(it);  // another file under that name
      }
      Seen& s = seen[name];
      if (s.stable_since == absl::Time() || s.size != size || s.mtime != mtime) {
        s = {size, mtime, absl::Now()};
        pending = true;
        continue;
      }
      if (absl::Now() - s.stable_since < o.settle) {
        pending = true;
        continue;
      }
      WriteState state = WriteState::kUnknown;
      std::optional<std::string> bytes = ReadComplete(f, &state);
      if (state == WriteState::kUnknown) {
        if (auto w = writing.find(name); w != writing.end() && w->second) bytes.reset();
      }
      if (!bytes.has_value() || bytes->size() != size) {
        s = {};  // still being written: wait for it to settle again
        pending = true;
        continue;
      }
      absl::StatusOr<WatchScore> r = scorer(name, *bytes);
      std::string verdict, row;
      if (r.ok()) {
        verdict = r->anomalous ? "ng" : "ok";
        row = absl::StrFormat("%s,%d,%s,%d,%.6g,%.6g,%s\n", CsvField(name), size,
                              CsvField(r->model), r->version, r->score, r->threshold, verdict);
      } else if (absl::IsInvalidArgument(r.status())) {
        verdict = "error";
        row = absl::StrFormat("%s,%d,,,,,%s\n", CsvField(name), size, verdict);
        std::fprintf(stderr, "invad watch: %s: %s\n", name.c_str(), r.status().ToString().c_str());
      } else {
        // The server is away, busy or reloading: the file stays and the scan waits, then retries.
        ++summary.retries;
        backoff = std::clamp(backoff * 2, absl::Milliseconds(250), o.max_backoff);
        std::fprintf(stderr, "invad watch: %s: %s (retry in %s)\n", name.c_str(),
                     r.status().ToString().c_str(), absl::FormatDuration(backoff).c_str());
        pending = true;
        SleepUnlessStopped(backoff, stop);
        break;
      }
      backoff = absl::ZeroDuration();
      if (absl::Status a = AppendRow(results, row); !a.ok()) {
        return a;  // without the journal, exactly-once cannot hold: stop rather than go on
      }
      ++summary.scored;
      seen.erase(name);
      writing.erase(name);
      if (absl::Status m = MoveInto(f, dest.at(verdict)); !m.ok()) {
        std::fprintf(stderr, "invad watch: %s: %s\n", name.c_str(), m.ToString().c_str());
        to_move[name] = {size, verdict};  // move it on the next scan, without scoring it again
        pending = true;
      }
      std::printf("%s  %s\n", name.c_str(), verdict.c_str());
      std::fflush(stdout);
    }
    // Forget files that went away without being scored.
    for (auto it = seen.begin(); it != seen.end();) {
      it = fs::exists(o.hot / it->first, ec) ? std::next(it) : seen.erase(it);
    }
    if (o.once && !pending) break;
    SleepUnlessStopped(o.poll_interval, stop);
  }
  if (inotify >= 0) ::close(inotify);
  return summary;
}

}  // namespace invad::cli

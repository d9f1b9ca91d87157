// The hot folder behind `invad watch`, with a fake scorer: files are scored exactly once, only when
// completely written, retried while the server is away, and replayed from the journal after a
// crash without being scored again. tests/integration/client/watch_test.py runs the binary against
// a real server that restarts.
#include "client/cli/watch.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "client/cli/files.h"

namespace invad::cli {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Records every call; names starting with "ng" are anomalous, "bad" is INVALID_ARGUMENT, and the
// first `unavailable` calls fail with UNAVAILABLE.
class FakeScorer {
 public:
  explicit FakeScorer(int unavailable = 0) : unavailable_(unavailable) {}
  WatchScorer AsScorer() {
    return [this](const std::string& name, const std::string& bytes) -> absl::StatusOr<WatchScore> {
      absl::MutexLock lock(&mu_);
      calls_.push_back({name, bytes});
      if (unavailable_ > 0) {
        --unavailable_;
        return absl::UnavailableError("server restarting");
      }
      if (absl::StartsWith(name, "bad")) return absl::InvalidArgumentError("not an image");
      return WatchScore{"m", 3, absl::StartsWith(name, "ng") ? 9.0 : 1.0, 5.0,
                        absl::StartsWith(name, "ng")};
    };
  }
  std::vector<std::pair<std::string, std::string>> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  int unavailable_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::string>> calls_ ABSL_GUARDED_BY(mu_);
};

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    options_.hot = dir_;
    options_.settle = absl::Milliseconds(50);
    options_.poll_interval = absl::Milliseconds(20);
    options_.max_backoff = absl::Milliseconds(100);
  }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::vector<std::string> Files(const std::string& sub) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / sub, ec)) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::vector<std::string>> Rows() {
    std::ifstream in(dir_ / "results.csv");
    std::vector<std::vector<std::string>> rows;
    for (std::string line; std::getline(in, line);) rows.push_back(ParseCsvRow(line));
    return rows;
  }
  // Runs the watcher on a thread until `done` holds (liveness bound: 60 s), then stops it.
  WatchSummary RunUntil(FakeScorer& scorer, const std::function<bool()>& done) {
    std::atomic<bool> stop{false};
    absl::StatusOr<WatchSummary> summary;
    std::thread t([&] { summary = RunWatch(options_, scorer.AsScorer(), stop); });
    const absl::Time limit = absl::Now() + absl::Seconds(60);
    while (!done() && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(10));
    stop = true;
    t.join();
    EXPECT_TRUE(done()) << "timed out";
    EXPECT_TRUE(summary.ok()) << summary.status();
    return summary.value_or(WatchSummary{});
  }

  fs::path dir_;
  WatchOptions options_;
};

TEST_F(WatchTest, EachFileIsScoredOnceAndMovedByItsVerdict) {
  Write("ok1.png", "first");
  Write("ng1.png", "second");
  Write("bad.png", "garbage");
  Write("notes.txt", "not an image: left alone");
  Write(".hidden.png", "a file being copied in under a hidden name");
  FakeScorer scorer;
  options_.once = true;
  std::atomic<bool> stop{false};
  absl::StatusOr<WatchSummary> s = RunWatch(options_, scorer.AsScorer(), stop);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->scored, 3);
  EXPECT_EQ(scorer.calls().size(), 3u);
  EXPECT_THAT(Files("ok"), ElementsAre("ok1.png"));
  EXPECT_THAT(Files("ng"), ElementsAre("ng1.png"));
  EXPECT_THAT(Files("error"), ElementsAre("bad.png"));
  EXPECT_TRUE(fs::exists(dir_ / "notes.txt"));
  EXPECT_TRUE(fs::exists(dir_ / ".hidden.png"));
  const auto rows = Rows();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_THAT(rows[0],
              ElementsAre("file", "bytes", "model", "version", "score", "threshold", "verdict"));
  EXPECT_THAT(rows[1], ElementsAre("bad.png", "7", "", "", "", "", "error"));
  EXPECT_THAT(rows[2], ElementsAre("ng1.png", "6", "m", "3", "9", "5", "ng"));
  EXPECT_THAT(rows[3], ElementsAre("ok1.png", "5", "m", "3", "1", "5", "ok"));

  // A second run over the emptied folder scores nothing and appends nothing.
  s = RunWatch(options_, scorer.AsScorer(), stop);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->scored, 0);
  EXPECT_EQ(Rows().size(), 4u);
}

TEST_F(WatchTest, AFileStillOpenForWritingIsScoredWholeAfterItsWriterClosesIt) {
  FakeScorer scorer;
  std::atomic<bool> stop{false};
  std::thread t([&] { ASSERT_TRUE(RunWatch(options_, scorer.AsScorer(), stop).ok()); });
  const std::string half(4096, 'a'), rest(4096, 'b');
  const int fd = ::open((dir_ / "ok_slow.png").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, half.data(), half.size()), static_cast<ssize_t>(half.size()));
  EXPECT_EQ(ProbeWriters(dir_ / "ok_slow.png"), WriteState::kOpenForWriting);
  // The writer pauses for 20 settle periods: size and time stay put, yet the file is open.
  absl::SleepFor(20 * options_.settle);
  EXPECT_THAT(scorer.calls(), IsEmpty());
  EXPECT_TRUE(fs::exists(dir_ / "ok_slow.png"));
  ASSERT_EQ(::write(fd, rest.data(), rest.size()), static_cast<ssize_t>(rest.size()));
  ::close(fd);
  EXPECT_EQ(ProbeWriters(dir_ / "ok_slow.png"), WriteState::kClosed);
  const absl::Time limit = absl::Now() + absl::Seconds(60);
  while (Files("ok").empty() && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(10));
  stop = true;
  t.join();
  const auto calls = scorer.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].second, half + rest);
  EXPECT_THAT(Files("ok"), ElementsAre("ok_slow.png"));
}

TEST_F(WatchTest, FilesRenamedInAndCopiedInWhileRunningAreEachScoredOnce) {
  FakeScorer scorer;
  int written = 0;
  WatchSummary s = RunUntil(scorer, [&] {
    if (written < 20) {  // the usual hand-over: write under a hidden name, rename in
      const std::string name = (written % 2 ? "ok" : "ng") + std::to_string(written) + ".png";
      Write("." + name, std::string(1000 + written, 'x'));
      fs::rename(dir_ / ("." + name), dir_ / name);
      Write("direct" + std::to_string(written) + ".png", "copied in place");
      ++written;
    }
    return written == 20 && Files("ok").size() + Files("ng").size() == 40;
  });
  EXPECT_EQ(s.scored, 40);
  EXPECT_EQ(scorer.calls().size(), 40u);
  EXPECT_EQ(Rows().size(), 41u);
}

TEST_F(WatchTest, WhileTheServerIsAwayFilesWaitAndAreScoredOnceItIsBack) {
  FakeScorer scorer(/*unavailable=*/5);
  Write("ok1.png", "one");
  Write("ok2.png", "two");
  WatchSummary s = RunUntil(scorer, [&] { return Files("ok").size() == 2; });
  EXPECT_EQ(s.retries, 5);
  EXPECT_EQ(s.scored, 2);
  EXPECT_EQ(scorer.calls().size(), 7u);
  EXPECT_EQ(Rows().size(), 3u);  // header + one row per file: no duplicates from the retries
  EXPECT_THAT(Files("error"), IsEmpty());
}

TEST_F(WatchTest, AfterACrashBetweenJournalAndMoveTheFileMovesWithoutBeingScoredAgain) {
  // The journal says ok1.png (5 bytes) and ng1.png were scored; the crash came before the moves,
  // in the middle of appending ok2.png's row.
  std::ofstream(dir_ / "results.csv") << kWatchCsvHeader << "\n"
                                      << "ok1.png,5,m,3,1,5,ok\n"
                                      << "ng1.png,6,m,3,9,5,ng\n"
                                      << "ok3.png,3,m,3,1,5,ok\n"
                                      << "ok2.png,4,m,3,1";  // torn: not a row
  Write("ok1.png", "first");
  Write("ng1.png", "second");
  Write("ok2.png", "torn");
  Write("ok3.png", "reused name, other size");  // a different file under a journalled name...
  FakeScorer scorer;
  options_.once = true;
  std::atomic<bool> stop{false};
  absl::StatusOr<WatchSummary> s = RunWatch(options_, scorer.AsScorer(), stop);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->replayed, 2);
  EXPECT_EQ(s->scored, 2);
  std::vector<std::string> scored;
  for (const auto& c : scorer.calls()) scored.push_back(c.first);
  EXPECT_THAT(scored, UnorderedElementsAre("ok2.png", "ok3.png"));  // ...is scored
  EXPECT_THAT(Files("ok"), ElementsAre("ok1.png", "ok2.png", "ok3.png"));
  EXPECT_THAT(Files("ng"), ElementsAre("ng1.png"));
  // The new rows start on lines of their own after the torn one.
  const auto rows = Rows();
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_THAT(rows[5], ElementsAre("ok2.png", "4", "m", "3", "1", "5", "ok"));
  EXPECT_EQ(ReadJournal(dir_ / "results.csv").at("ok3.png").first, 23u);
}

TEST_F(WatchTest, AMoveNeverReplacesAFileAlreadyInTheDestination) {
  fs::create_directories(dir_ / "ok");
  std::ofstream(dir_ / "ok" / "ok1.png") << "yesterday's";
  Write("ok1.png", "today's");
  FakeScorer scorer;
  options_.once = true;
  std::atomic<bool> stop{false};
  ASSERT_TRUE(RunWatch(options_, scorer.AsScorer(), stop).ok());
  EXPECT_THAT(Files("ok"), ElementsAre("ok1-1.png", "ok1.png"));
  std::ifstream in(dir_ / "ok" / "ok1.png");
  std::string old;
  std::getline(in, old);
  EXPECT_EQ(old, "yesterday's");
}

TEST_F(WatchTest, AMissingFolderIsAnError) {
  options_.hot = dir_ / "missing";
  FakeScorer scorer;
  std::atomic<bool> stop{false};
  EXPECT_EQ(RunWatch(options_, scorer.AsScorer(), stop).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CsvTest, FieldsRoundTripThroughQuoting) {
  const std::vector<std::string> fields = {"a,b", "say \"hi\"", "", "plain"};
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + CsvField(fields[i]);
  EXPECT_EQ(ParseCsvRow(line), fields);
}

}  // namespace
}  // namespace invad::cli

#include "tools/common/progress.h"

#include <cstdio>

#include <unistd.h>

#include "absl/strings/str_format.h"

namespace invad::tools {
namespace {

std::string Clock(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  return s >= 3600 ? absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                   : absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace

ProgressBar::ProgressBar(std::string label, int total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::Update(int done, const std::string& extra) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int decile = total_ > 0 ? done * 10 / total_ : 10;
  if (tty_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else if (decile == last_decile_ && done < total_) {
    return;
  }
  last_draw_ = now;
  last_decile_ = decile;
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? done * kWidth / total_ : kWidth;
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  const std::string line =
      absl::StrFormat("%s [%s] %d/%d %3d%% %s %.1f %s/s ETA %s", label_, bar, done, total_,
                      total_ > 0 ? done * 100 / total_ : 100, extra, rate, unit_, Clock(eta));
  std::fprintf(stderr, tty_ ? "\r%s\033[K" : "%s\n", line.c_str());
  std::fflush(stderr);
}

void ProgressBar::Finish(const std::string& extra) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "%s%s done: %d %s in %s %s\n", tty_ ? "\r\033[K" : "", label_.c_str(),
               total_, unit_.c_str(), Clock(elapsed).c_str(), extra.c_str());
  std::fflush(stderr);
}

}  // namespace invad::tools

// File: tools/common/progress.h
//
// A one-line progress bar on stderr: "label [#####.....] 512/1000 51% loss 0.1234 38.2/s ETA 0:42".
// On a terminal it redraws in place; otherwise (logs, CI) it prints a line every 10 %.
#pragma once

#include <chrono>
#include <string>

namespace invad::tools {

class ProgressBar {
 public:
  ProgressBar(std::string label, int total, std::string unit = "img");
  // `done` items completed; `extra` (e.g. "loss 0.123") is shown after the counts.
  void Update(int done, const std::string& extra = "");
  void Finish(const std::string& extra = "");  // final line with the elapsed time

 private:
  std::string label_, unit_;
  int total_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace invad::tools

// Minimal invad SDK user: score one image file and print the verdict.
//   score_image localhost:50051 demo part.png
#include <cstdio>
#include <fstream>
#include <sstream>

#include "invad/client/client.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s TARGET MODEL IMAGE\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[3], std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();

  invad::client::ClientOptions options;
  options.target = argv[1];
  auto client = invad::client::Client::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 2;
  }
  invad::client::ScoreOptions score;
  score.model = argv[2];
  score.ids.frame_id = argv[3];
  auto result = (*client)->Score(invad::client::Image::Encoded(bytes.str()), score);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().ToString().c_str());
    return 2;
  }
  std::printf("%s score=%.3f threshold=%.3f %s\n", argv[3], result->score, result->threshold,
              result->anomalous ? "ANOMALOUS" : "ok");
  return result->anomalous ? 1 : 0;
}

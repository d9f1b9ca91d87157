#!/usr/bin/python3
"""Minimal invad client in Python (grpcio): score image files and print the verdicts.

  ./generate_stubs.sh                                   # once: ./stubs from ../../proto
  ./score_image.py localhost:50051 demo part1.png part2.png [--token_file=F]

Exit status: 0 all normal, 1 an anomaly, 2 an error (the gRPC code is printed).
Use /usr/bin/python3: Debian's python3-grpcio imports from there.
"""
import argparse
import os
import sys

sys.path.insert(0, os.environ.get("INVAD_STUBS",
                                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs")))
import grpc  # noqa: E402
from invad.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target")
    ap.add_argument("model")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--token_file", default="", help="bearer token, when the server asks for one")
    ap.add_argument("--deadline", type=float, default=30.0, help="seconds per call")
    a = ap.parse_args()
    metadata = []
    if a.token_file:
        metadata.append(("authorization", "Bearer " + open(a.token_file).read().strip()))
    worst = 0
    with grpc.insecure_channel(a.target) as channel:
        stub = inference_pb2_grpc.AnomalyDetectionStub(channel)
        for path in a.images:
            with open(path, "rb") as f:
                request = inference_pb2.ScoreRequest(
                    model=a.model, image=inference_pb2.Image(encoded=f.read()))
            request.correlation.frame_id = os.path.basename(path)
            try:
                r = stub.Score(request, timeout=a.deadline, metadata=metadata)
            except grpc.RpcError as e:  # codes as in docs/contracts.md
                print(f"{path}: {e.code().name}: {e.details()}", file=sys.stderr)
                worst = 2
                continue
            print(f"{path} score={r.score:.3f} threshold={r.threshold:.3f} "
                  f"{'ANOMALOUS' if r.anomalous else 'ok'} ({r.model} v{r.version}, "
                  f"{r.timings.total_us / 1000:.1f} ms)")
            if r.anomalous:
                worst = max(worst, 1)
    return worst


if __name__ == "__main__":
    sys.exit(main())

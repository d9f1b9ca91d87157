#!/usr/bin/python3
"""The `invad` CLI against the invad-server binary: JSON/CSV schema, overlay PNGs at the input's
size, exit codes, health and models; the server's start-up refusal of bad --host_memory.

  cli_test.py --bin BUILD_DIR --work DIR
"""
import csv
import io
import json
import os
import re
import urllib.request

from fixture import Server, run, setup

from PIL import Image


def main():
    a, invad, tile, repo = setup(__doc__)
    server = Server(a.bin, a.work, repo)
    try:
        port, metrics_port = server.port, server.metrics_port
        target = f"--target=127.0.0.1:{port}"
        server.wait_serving(invad)

        # health / models, readable and JSON
        h = run([invad, "health", target, "--json"])
        assert h.returncode == 0 and json.loads(h.stdout)["status"] == "SERVING", h
        h = run([invad, "health", target, "--service=liveness"])
        assert h.returncode == 0 and "SERVING" in h.stdout, h
        m = run([invad, "models", target])
        assert m.returncode == 0 and "tile" in m.stdout and "READY" in m.stdout, m
        models = json.loads(run([invad, "models", target, "--json"]).stdout)["models"]
        assert models[0]["name"] == "tile" and models[0]["versions"][0]["input"] == [64, 64, 3]

        # score: JSON lines with the documented fields, one per image of the folder
        test = os.path.join(tile, "test")
        images = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(test) for f in fs)
        out_dir = os.path.join(a.work, "overlays")
        s = run([invad, "score", test, target, "--json", f"--overlay_dir={out_dir}",
                 "--fail_on_anomaly=false", "--progress=false"])
        assert s.returncode == 0, s
        lines = [json.loads(line) for line in s.stdout.splitlines()]
        assert [x["file"] for x in lines] == images, (lines, images)
        for x in lines:
            for key, kind in (("model", str), ("version", int), ("steps", int),
                              ("score", float), ("threshold", float), ("anomalous", bool),
                              ("regions", list), ("queue_ms", float), ("compute_ms", float),
                              ("server_ms", float)):
                assert isinstance(x[key], kind) or (kind is float and isinstance(x[key], int)), \
                    (key, x)
            assert x["anomalous"] == (x["score"] > x["threshold"])
        # overlays: one per image, image | heat map side by side at the input's size
        overlays = sorted(os.listdir(out_dir))
        assert len(overlays) == len(images), overlays
        for f in overlays:
            w, h = Image.open(os.path.join(out_dir, f)).size
            assert (w, h) == (128, 64), (f, w, h)

        # CSV
        c = run([invad, "score", images[0], images[1], target, "--csv", "--fail_on_anomaly=false"])
        rows = list(csv.DictReader(io.StringIO(c.stdout)))
        assert c.returncode == 0 and len(rows) == 2 and rows[0]["file"] == images[0], c
        assert set(rows[0]) == {"file", "model", "version", "score", "threshold", "anomalous",
                                "regions", "error"}

        # exit codes: 1 when an image is anomalous, 0 with --fail_on_anomaly=false, 2 on errors
        assert run([invad, "score", images[0], target, "--threshold=-1e9"]).returncode == 1
        assert run([invad, "score", images[0], target, "--threshold=1e9"]).returncode == 0
        assert run([invad, "score", images[0], target, "--threshold=-1e9",
                    "--fail_on_anomaly=false"]).returncode == 0
        assert run([invad, "score", os.path.join(a.work, "missing.png"), target]).returncode == 2
        bad = os.path.join(a.work, "bad.png")
        open(bad, "wb").write(b"not a png")
        b = run([invad, "score", bad, target, "--json"])
        assert b.returncode == 2 and json.loads(b.stdout)["error"]["code"] == "INVALID_ARGUMENT", b
        assert run([invad, "score", images[0], target, "--model=nope"]).returncode == 2
        assert run([invad, "frobnicate"]).returncode == 2
        assert "invad score" in run([invad, "score", "--help"]).stdout + \
            run([invad, "score", "--help"]).stderr
        # bench: exactly N requests reach the server, with the codes the client reports
        def served():
            body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                          timeout=10).read().decode()
            out = {}
            for code, n in re.findall(
                    r'^invad_requests_total\{code="(\w+)",method="Score",model="tile",'
                    r'version="1"\} (\d+)', body, re.M):
                out[code] = int(n)
            return out
        before = served()
        b = run([invad, "bench", target, "--requests=25", "--warmup=0", "--concurrency=3",
                 "--json"])
        assert b.returncode == 0, b
        level = json.loads(b.stdout.splitlines()[0])
        after = served()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        delta = {k: v for k, v in delta.items() if v}
        assert level["requests"] == 25 and delta == level["codes"] == {"OK": 25}, (level, delta)
        for key in ("throughput", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "server_queue_ms",
                    "server_compute_ms"):
            assert level[key] >= 0, (key, level)
        sweep = run([invad, "bench", target, "--concurrency=1,2", "--requests=6", "--warmup=1"])
        assert sweep.returncode == 0 and "concurrency 2" in sweep.stdout, sweep
        # cancelling a share mid-flight: every request still reaches the server exactly once
        before = served()
        c = run([invad, "bench", target, "--requests=20", "--warmup=0", "--concurrency=4",
                 "--cancel_after=1ms", "--cancel_fraction=0.5", "--json"])
        assert c.returncode == 0, c
        after = served()
        cancelled = json.loads(c.stdout.splitlines()[0])
        assert cancelled["requests"] == 20, cancelled
        # A call cancelled before it was sent never reaches the server; none is sent twice.
        assert 0 < sum(after.values()) - sum(before.values()) <= 20, (before, after)
        print("cli test: OK")
    finally:
        server.stop()
    # nothing listens any more: health is an error (2)
    assert run([invad, "health", target, "--deadline=2s"]).returncode == 2

    # The server refuses, at start-up, host memory its device cannot have: pinned needs CUDA.
    server_bin = os.path.join(a.bin, "server/invad-server")
    for flags, message in ((["--host_memory=pinned"], "pinned host memory needs a CUDA device"),
                           (["--host_memory=locked"], "auto, pageable or pinned")):
        r = run([server_bin, "--grpc_address=127.0.0.1:0", "--metrics_address=127.0.0.1:0",
                 f"--model_repository={repo}"] + flags)
        assert r.returncode == 2 and message in r.stderr, (flags, r)


if __name__ == "__main__":
    main()

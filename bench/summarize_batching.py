#!/usr/bin/python3
"""Markdown tables from bench/run_batching_bench.sh's Google Benchmark JSON files."""
import glob
import json
import os
import re
import sys


def load(path):
    with open(path) as f:
        return json.load(f)["benchmarks"]


def args(name):
    return dict(re.findall(r"(\w+):(\d+)", name))


def main(folder):
    cap = load(os.path.join(folder, "capacity.json"))
    medians = [b for b in cap if b.get("aggregate_name") == "median"]
    rows = medians or [b for b in cap if b.get("run_type") == "iteration"]
    print("\n### Scheduler capacity (zero-cost runner, 2 submitting threads, "
          f"{'median of repetitions' if medians else 'one run'})\n")
    print("| max_batch_size | mode | tasks/s |")
    print("|---|---|---|")
    for b in rows:
        a = args(b["name"])
        mode = "step-level" if a["step_level"] == "1" else "whole-request"
        print(f"| {a['max_batch']} | {mode} | {b['tasks_per_s']:,.0f} |")
    for path in sorted(glob.glob(os.path.join(folder, "load_*.json"))):
        config = os.path.basename(path)[5:-5]
        rows = load(path)
        closed = {}
        for b in rows:
            a = args(b["name"])
            if b["name"].startswith("BM_ClosedLoop"):
                closed[(int(a["max_batch"]), int(a["step_level"]), int(a["clients"]))] = b
        calls = {}
        for b in rows:
            if b["name"].startswith("BM_ModelCall"):
                a = args(b["name"])
                calls[(int(a["denoise"]), int(a["batch"]))] = b["real_time"] / int(a["batch"])
        if calls:
            print(f"\n### One model call by batch size, `{config}` (ms per image)\n")
            sizes = sorted({k[1] for k in calls})
            print("| call | " + " | ".join(f"batch {n}" for n in sizes) +
                  f" | {sizes[-1]} vs {sizes[0]} |")
            print("|---|" + "---|" * (len(sizes) + 1))
            for d, name in ((0, "encoder"), (1, "denoiser step")):
                v = [calls.get((d, n), float("nan")) for n in sizes]
                print(f"| {name} | " + " | ".join(f"{x:.2f}" for x in v) +
                      f" | {v[0] / v[-1]:.2f}× |")
        print(f"\n### Closed loop, configuration `{config}` (K = 3, 4 s per point)\n")
        print("| clients | batch 1: tasks/s | p50 ms | p99 ms | batch 16 whole: tasks/s | p50 | p99 | "
              "mean batch | batch 16 step-level: tasks/s | p50 | p99 | whole ÷ batch 1 | "
              "step ÷ batch 1 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for c in sorted({k[2] for k in closed}):
            one, whole, step = closed.get((1, 0, c)), closed.get((16, 0, c)), closed.get((16, 1, c))
            def cells(b, batch=False):
                if b is None:
                    return "– | – | –" + (" | –" if batch else "")
                s = f"{b['tasks_per_s']:.1f} | {b['p50_ms']:.0f} | {b['p99_ms']:.0f}"
                return s + (f" | {b['mean_batch']:.1f}" if batch else "")
            def ratio(b):
                return b["tasks_per_s"] / one["tasks_per_s"] if one and b else float("nan")
            print(f"| {c} | {cells(one)} | {cells(whole, True)} | {cells(step)} | "
                  f"{ratio(whole):.2f} | {ratio(step):.2f} |")
        opened = [b for b in rows if b["name"].startswith("BM_OpenLoop")]
        if opened:
            print(f"\nOpen loop at 70 % of the closed-loop peak (32 clients), `{config}`:\n")
            print("| mode | offered tasks/s | served tasks/s | p50 ms | p99 ms | mean batch |")
            print("|---|---|---|---|---|---|")
            for b in opened:
                a = args(b["name"])
                mode = "step-level" if a["step_level"] == "1" else "whole-request"
                print(f"| {mode} | {b['offered_per_s']:.1f} | {b['tasks_per_s']:.1f} | "
                      f"{b['p50_ms']:.0f} | {b['p99_ms']:.0f} | {b['mean_batch']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1])

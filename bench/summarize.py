"""Turns core_bench JSON files (one per variant) into the markdown tables of docs/benchmarks.md.
All figures are medians over repetitions measured in the same run."""
import json
import os
import sys

d = sys.argv[1]


def medians(name):
    path = os.path.join(d, name + ".json")
    if not os.path.exists(path):
        return {}
    data = json.load(open(path))
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            unit = b["time_unit"]
            scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
            name = b["run_name"].replace("/real_time", "")
            out[name] = b["real_time"] * scale  # ms
            for c in ("full_over_model_calls", "encoder_ms_in_loop", "denoiser_ms_in_loop"):
                if c in b:
                    out[name + ":" + c] = b[c]
    return out


m = medians("main")
steps = 3
print("\n| batch | encoder ms | denoiser call ms | full K=3 scoring ms | images/s | in the full loop: encoder ms / denoiser call ms | full ÷ its own model calls (same loop) | full ÷ (enc + 3·den) (separate runs) |")
print("|---|---|---|---|---|---|---|---|")
for b in (1, 4, 16, 32):
    enc, den, full = m.get(f"BM_Encoder/{b}"), m.get(f"BM_DenoiserCall/{b}"), m.get(f"BM_FullScoring/{b}")
    if None in (enc, den, full):
        continue
    ratio = m.get(f"BM_FullScoring/{b}:full_over_model_calls", float("nan"))
    e_in = m.get(f"BM_FullScoring/{b}:encoder_ms_in_loop", float("nan"))
    d_in = m.get(f"BM_FullScoring/{b}:denoiser_ms_in_loop", float("nan"))
    print(f"| {b} | {enc:.2f} | {den:.2f} | {full:.2f} | {1000 * b / full:.1f} | {e_in:.2f} / {d_in:.2f} | "
          f"{ratio:.3f} | {full / (enc + steps * den):.3f} |")

print("\n| change (batch 16) | before ms | after ms | speed-up |")
print("|---|---|---|---|")
nm, ot, bf = medians("no_malloc_fix"), medians("one_thread"), medians("bf16")
for what in ("Encoder", "DenoiserCall"):
    k = f"BM_{what}/16"
    if k in nm and k in m:
        print(f"| allocator fix (P2), {what} | {nm[k]:.2f} | {m[k]:.2f} | {nm[k] / m[k]:.2f}× |")
for what in ("Encoder", "DenoiserCall"):
    k = f"BM_{what}/16"
    if k in ot and k in m:
        print(f"| 2 intra-op threads instead of 1 (P4), {what} | {ot[k]:.2f} | {m[k]:.2f} | {ot[k] / m[k]:.2f}× |")
k = "BM_DenoiserCall/16"
if k in bf and k in m:
    print(f"| bf16 instead of fp32, DenoiserCall | {m[k]:.2f} | {bf[k]:.2f} | {m[k] / bf[k]:.2f}× |")
rb = medians("reference_blas")
if k in rb and k in m:
    print(f"| OpenMP OpenBLAS instead of the reference BLAS (P1), DenoiserCall | {rb[k]:.2f} | {m[k]:.2f} | {rb[k] / m[k]:.2f}× |")
k = "BM_Encoder/16"
full = sorted(medians(f"effnet_full_{i}")[k] for i in range(1, 4) if medians(f"effnet_full_{i}"))
trunc = sorted(medians(f"effnet_truncated_{i}")[k] for i in range(1, 4) if medians(f"effnet_truncated_{i}"))
if full and trunc:
    f, t = full[len(full) // 2], trunc[len(trunc) // 2]
    print(f"| EfficientNet-B4 stand-in truncated after its last used block (−38.7 % conv MACs), Encoder, "
          f"median of {len(full)} alternating runs | {f:.2f} | {t:.2f} | {f / t:.2f}× |")
p = medians("plan")
if p:
    print(f"| schedule + K=3 plan built at load, not per call | {p['BM_PlanPerCall'] * 1000:.2f} µs | "
          f"{p['BM_PlanCached'] * 1000:.4f} µs | {p['BM_PlanPerCall'] / p['BM_PlanCached']:.0f}× |")
lat = medians("lattice")
for b in (1, 16):
    off, on = lat.get(f"BM_FilterBankLattice/lattice:0/batch:{b}"), lat.get(f"BM_FilterBankLattice/lattice:1/batch:{b}")
    if off and on:
        print(f"| filter bank on 256² woven grids, without / with the lattice channels "
              f"(`--filter_lattice`), batch {b} (ms per call) | {off:.2f} | {on:.2f} | "
              f"+{(on - off) / b:.2f} ms per image ({on / off:.2f}×) |")

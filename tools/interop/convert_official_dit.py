#!/usr/bin/env python3
"""Converts an official InvAD denoiser checkpoint (SkyShunsuke/InversionAD) into invad's native DiT
weights (safetensors) and prints the manifest's `denoiser { dit { ... } }` block.

    /usr/bin/python3 tools/interop/convert_official_dit.py model_ema_latest.pth \
        --out denoiser.safetensors [--heads 8] [--dtype F32|BF16]

Accepts a bare state dict or one nested under "model"/"state_dict"/"model_ema"; strips DDP's
"module." and the wrapper's "net." prefixes; drops the unused x_embedder_linear, y_embedder and
cls_embed. The number of heads cannot be read from the weights (official configs: 8).
Needs only torch (Debian python3-torch) and numpy. See docs/interop.md.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

UNUSED_PREFIXES = ("x_embedder_linear.", "y_embedder.")


def convert(state):
    for key in ("model_ema", "model", "state_dict", "ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    out = {}
    for k, v in state.items():
        if k.startswith("module."):
            k = k[len("module."):]
        if not k.startswith("net."):
            continue  # cls_embed and anything outside the DiT
        k = k[len("net."):]
        if k.startswith(UNUSED_PREFIXES):
            continue
        out[k] = v.float()
    if "x_embedder.proj.weight" not in out:
        raise SystemExit("no net.x_embedder.proj.weight: not an InvAD DiT checkpoint")
    return out


def infer_config(w, heads):
    hidden, in_ch, p, _ = w["x_embedder.proj.weight"].shape
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    mlp_hidden = w["blocks.0.mlp.fc1.weight"].shape[0]
    tokens = w["pos_embed"].shape[1]
    freq = w["t_embedder.mlp.0.weight"].shape[1]
    return dict(channels=in_ch, patch_size=p, hidden_size=hidden, depth=depth, num_heads=heads,
                mlp_ratio_x100=mlp_hidden * 100 // hidden, frequency_embedding_size=freq, tokens=tokens)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dtype", choices=("F32", "BF16"), default="F32")
    a = ap.parse_args()
    state = torch.load(a.checkpoint, map_location="cpu")
    w = convert(state)
    cfg = infer_config(w, a.heads)
    if cfg["hidden_size"] % cfg["num_heads"]:
        raise SystemExit(f"--heads {a.heads} does not divide hidden size {cfg['hidden_size']}")
    safetensors_io.save(w, a.out, a.dtype)
    side = int(round(cfg["tokens"] ** 0.5)) * cfg["patch_size"]
    print(f"# latent {{ channels: {cfg['channels']} height: {side} width: {side} }}")
    print("denoiser {\n  dit {")
    print(f'    weights_file: "{os.path.basename(a.out)}"')
    for k in ("patch_size", "hidden_size", "depth", "num_heads", "mlp_ratio_x100", "frequency_embedding_size"):
        print(f"    {k}: {cfg[k]}")
    print("  }\n}")


if __name__ == "__main__":
    main()

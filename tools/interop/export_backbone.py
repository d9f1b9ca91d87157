#!/usr/bin/env python3
"""Exports a frozen backbone feature extractor to TorchScript for invad's TorchScript encoder:
forward(images [B, 3, 256, 256], ImageNet-normalised) -> z0 [B, 272, 16, 16].

Two sources:

  --official_repo PATH   Run inside the official InvAD environment: imports its own EfficientNet-B4
                         (lukemelas/UniAD implementation, with the static 380-px "SAME" padding of
                         method.md §2.2 that its checkpoints were trained on) through
                         --factory (default backbones:get_backbone) with --factory_kwargs (JSON),
                         traces it, and checks the output shape. Only this reproduces the features
                         official denoiser checkpoints expect.
  --standin              torchvision's EfficientNet-B4 with random weights (no download), blocks
                         features[1,2,3,5] bilinearly resized to 16x16 and concatenated: the same
                         interface and shape, for tests and benchmarks. By default the network is
                         truncated after its last used block; --full computes every block like the
                         reference does (for the before/after benchmark).

Save with a torch whose TorchScript Debian's LibTorch 1.13 loads (platform.md P9): export with
Debian's python3-torch, or from torch >= 2 only if the traced graph uses no newer operators.
"""
import argparse
import importlib
import json
import sys

import torch
import torch.nn.functional as F
from torch import nn


class StandIn(nn.Module):
    def __init__(self, full=False):
        super().__init__()
        import torchvision
        net = torchvision.models.efficientnet_b4(weights=None)
        self.features = net.features if full else net.features[:6]
        self.take = (1, 2, 3, 5)

    def forward(self, x):
        outs = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self.take:
                outs.append(F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False))
        return torch.cat(outs, dim=1)


def official(repo, factory, kwargs):
    import builtins
    builtins.sys = sys  # the official src/denoiser.py uses sys without importing it (platform.md P10)
    sys.path.insert(0, f"{repo}/src")
    mod, fn = factory.split(":")
    return getattr(importlib.import_module(mod), fn)(**kwargs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--official_repo")
    src.add_argument("--standin", action="store_true")
    ap.add_argument("--factory", default="backbones:get_backbone")
    ap.add_argument("--factory_kwargs", default="{}")
    ap.add_argument("--full", action="store_true", help="stand-in: compute every block (no truncation)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    if a.standin:
        model = StandIn(full=a.full)
    else:
        model = official(a.official_repo, a.factory, json.loads(a.factory_kwargs))
    model.eval()
    example = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
        y = traced(example)
    if tuple(y.shape[1:]) != (272, 16, 16):
        raise SystemExit(f"backbone returns {tuple(y.shape)}, expected [B, 272, 16, 16]")
    traced.save(a.out)
    print(f"wrote {a.out}: [B,3,256,256] -> {list(y.shape[1:])}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Probe, not product (issue 3's note of 2026-11-30): how far a per-pixel standardised residual
detector gets on invad-datagen's washer once parts are in a canonical pose. It motivates the next
encoder feature (per-pixel mean/SD maps of the rotational residual, fitted on the training images
and summarised per latent cell); the product does not use this script.

Per image (grey, network size = the image size): pose normalisation as preprocess::NormalisePose
does it (isodata foreground off the border; rotate about its centroid so the intensity moment points
along +x; centroid to the centre; bilinear), then the rotational residual (grey − mean of its ±20°
turns about the foreground centroid), then two maps: |residual| box-blurred 3×3 ("blob") and the
maximum over 16 orientations of a zero-mean 15-px line filter on the residual ("line"). Each map is
standardised per pixel with the training images' mean and SD; the image score is the maximum over
pixels of the two 3×3-blurred z-maps. Prints I-AUROC per subtle defect kind, over the subtle bucket
and over all defects (sklearn, exact).

  scripts/probes/washer_pixel_norm.py build/accuracy/data/washer   # after scripts/accuracy.py's data stage
"""
import csv
import glob
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import roc_auc_score

ANGLE = 0.349066  # core::kRotationalAngle
LINE = 15


def isodata(g):
    t = g.mean()
    for _ in range(100):
        lo, hi = g[g <= t], g[g > t]
        nt = 0.5 * (lo.mean() + hi.mean())
        if abs(nt - t) < 1e-6 * (g.max() - g.min()):
            return nt
        t = nt
    return t


def foreground(g):
    m = g > isodata(g)
    border = torch.cat([m[0], m[-1], m[:, 0], m[:, -1]])
    return ~m if border.float().mean() > 0.5 else m


def rotate(g, cx, cy, angle, ox=None, oy=None):
    """Image whose pixel u shows g at c + R(angle)(u − o) (o = c unless given)."""
    h, w = g.shape
    ox = cx if ox is None else ox
    oy = cy if oy is None else oy
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    sx = cx + c * (xx - ox) - s * (yy - oy)
    sy = cy + s * (xx - ox) + c * (yy - oy)
    grid = torch.stack([sx / (w - 1) * 2 - 1, sy / (h - 1) * 2 - 1], -1)[None]
    return F.grid_sample(g[None, None], grid, align_corners=True, padding_mode="border")[0, 0]


def canonical(g):
    m = foreground(g)
    ys, xs = torch.nonzero(m, as_tuple=True)
    cx, cy = xs.float().mean(), ys.float().mean()
    v = g[ys, xs] - g[ys, xs].mean()
    angle = math.atan2(float((v * (ys - cy)).sum()), float((v * (xs - cx)).sum()))
    h, w = g.shape
    return rotate(g, float(cx), float(cy), angle, (w - 1) / 2, (h - 1) / 2)


def line_kernels():
    ks = []
    for k in range(16):
        th = math.pi * k / 16
        kk = torch.zeros(LINE + 2, LINE + 2)
        for t in np.linspace(-(LINE - 1) / 2, (LINE - 1) / 2, 4 * LINE):
            kk[int(round((LINE + 1) / 2 + t * math.sin(th))),
               int(round((LINE + 1) / 2 + t * math.cos(th)))] = 1
        kk /= kk.sum()
        ks.append(kk - kk.mean())
    return torch.stack(ks)[:, None]


KERNELS = line_kernels()


def maps(path):
    g = canonical(torch.tensor(np.asarray(Image.open(path).convert("L"), dtype=np.float32)))
    m = foreground(g)
    ys, xs = torch.nonzero(m, as_tuple=True)
    cx, cy = float(xs.float().mean()), float(ys.float().mean())
    r = g - 0.5 * (rotate(g, cx, cy, ANGLE) + rotate(g, cx, cy, -ANGLE))
    h, w = g.shape
    line = F.conv2d(r[None, None], KERNELS, padding=(LINE + 2) // 2)[0].abs().amax(0)[:h, :w]
    blob = F.avg_pool2d(r[None, None].abs(), 3, 1, 1)[0, 0]
    return torch.stack([blob, line])


def main():
    root = sys.argv[1]
    labels = {r["path"]: r for r in csv.DictReader(open(os.path.join(root, "labels.csv")))}
    train = torch.stack([maps(p) for p in sorted(glob.glob(os.path.join(root, "train/good/*.png")))])
    mu, sd = train.mean(0), train.std(0) + 1e-3
    scores, kinds = [], []
    for p in sorted(glob.glob(os.path.join(root, "test/*/*.png"))):
        z = F.avg_pool2d(((maps(p) - mu) / sd)[None], 3, 1, 1)[0].amax(0)
        scores.append(float(z.amax()))
        r = labels[os.path.relpath(p, root)]
        kinds.append((r["defect"], r["difficulty"]))
    good = [s for s, k in zip(scores, kinds) if k[0] == "good"]

    def auroc(sel):
        pos = [s for s, k in zip(scores, kinds) if k[0] != "good" and sel(k)]
        return roc_auc_score([0] * len(good) + [1] * len(pos), good + pos), len(pos)

    for kind in sorted({k[0] for k in kinds if k[0] != "good"}):
        a, n = auroc(lambda k, kind=kind: k == (kind, "subtle"))
        print(f"{kind} subtle ({n}): {a:.3f}")
    for name, sel in (("all subtle", lambda k: k[1] == "subtle"), ("all defects", lambda k: True)):
        a, n = auroc(sel)
        print(f"{name} ({n}): {a:.3f}")


if __name__ == "__main__":
    main()

"""Prepares the interop test's inputs and references (tests/integration/interop_test.cc).

Usage: interop_reference.py OUT_DIR
Writes, with Debian's python3-torch:
  official.pth        a checkpoint with the official key layout (module.net.*, cls_embed, unused
                      embedders), from tools/interop/reference_dit.py (272 ch, 16x16, patch 1,
                      adaLN-Zero; small depth and width), every layer randomised
  denoiser.safetensors  converted by tools/interop/convert_official_dit.py
  dit.pt              the same DiT traced to TorchScript (forward(x, t))
  encoder.pt          the stand-in backbone (tools/interop/export_backbone.py --standin)
  z.f32, t.i64, eps.f32   a latent batch, its timesteps and the reference eps
  img.f32, z0.f32     an image batch and the stand-in encoder's z0
"""
import os
import subprocess
import sys

import numpy as np
import torch

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(root, "tools", "interop"))
import reference_dit  # noqa: E402

out = sys.argv[1]
gigant = "--gigant" in sys.argv[2:]  # the paper's 1.2 B DiT: manual check only (tools/interop/check_gigant.sh)
torch.manual_seed(0)
if gigant:
    model = reference_dit.Denoiser(in_ch=272, size=16, patch=1, hidden=2048, depth=16, heads=8)
else:
    model = reference_dit.Denoiser(in_ch=272, size=16, patch=1, hidden=64, depth=2, heads=4)
with torch.no_grad():
    for p in model.parameters():  # randomise everything (adaLN-Zero would make the output 0)
        p.copy_(torch.randn_like(p) * 0.05)
model.eval()
state = {"model": {"module." + k: v for k, v in model.state_dict().items()}}
torch.save(state, f"{out}/official.pth")
del state
subprocess.check_call([sys.executable, f"{root}/tools/interop/convert_official_dit.py", f"{out}/official.pth",
                       "--out", f"{out}/denoiser.safetensors", "--heads", "8" if gigant else "4"],
                      stdout=subprocess.DEVNULL)
os.remove(f"{out}/official.pth")

z = torch.randn(3, 272, 16, 16)
t = torch.tensor([0, 500, 999], dtype=torch.int64)
with torch.no_grad():
    eps = model.net(z, t)
    if not gigant:
        torch.jit.trace(model.net, (z, t)).save(f"{out}/dit.pt")
z.numpy().astype(np.float32).tofile(f"{out}/z.f32")
t.numpy().tofile(f"{out}/t.i64")
eps.numpy().astype(np.float32).tofile(f"{out}/eps.f32")
if gigant:
    sys.exit(0)

subprocess.check_call([sys.executable, f"{root}/tools/interop/export_backbone.py", "--standin", "--out",
                       f"{out}/encoder.pt"], stdout=subprocess.DEVNULL)
enc = torch.jit.load(f"{out}/encoder.pt")
img = torch.randn(2, 3, 256, 256)
with torch.no_grad():
    z0 = enc(img)
img.numpy().astype(np.float32).tofile(f"{out}/img.f32")
z0.numpy().astype(np.float32).tofile(f"{out}/z0.f32")

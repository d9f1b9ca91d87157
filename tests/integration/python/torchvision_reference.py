"""Writes reference preprocessing outputs with PIL + torchvision, as the official InvAD code does.

Usage: torchvision_reference.py OUT_DIR
For each case it writes <case>.png (the input) and <case>.f32 (the network input, float32 CHW) and,
for 8-bit RGB cases, <case>.resized.u8 (PIL's resized image, HWC).
"""
import sys

import numpy as np
from PIL import Image
from torchvision import transforms

out = sys.argv[1]
rng = np.random.default_rng(1234)
norm = transforms.Compose([
    transforms.Resize((256, 256)),
    transforms.ToTensor(),
    transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
])


def structured(h, w, c):
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 255.0 / w)[..., None] * np.ones(c) + (y * 97 % 256)[..., None]
    noise = rng.integers(0, 60, size=(h, w, c))
    return np.clip(base * 0.6 + noise, 0, 255).astype(np.uint8)


cases = {
    "down_rgb": structured(203, 301, 3),   # downscale, non-square, odd sizes
    "up_rgb": structured(80, 100, 3),      # upscale
    "gray": structured(300, 300, 1)[..., 0],  # grayscale PNG converted to RGB
}
for name, arr in cases.items():
    img = Image.fromarray(arr)
    img.save(f"{out}/{name}.png")
    rgb = Image.open(f"{out}/{name}.png").convert("RGB")
    x = norm(rgb).numpy().astype(np.float32)
    x.tofile(f"{out}/{name}.f32")
    if arr.ndim == 3:
        np.asarray(rgb.resize((256, 256), Image.BILINEAR), dtype=np.uint8).tofile(f"{out}/{name}.resized.u8")

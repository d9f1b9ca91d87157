"""Minimal safetensors writer/reader (numpy only), matching bundle/safetensors.cc. No extra packages."""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16}


def save(tensors, path, dtype="F32"):
    """tensors: dict name -> numpy array or torch tensor. dtype: F32 or BF16."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if hasattr(t, "detach"):
            import torch
            t = t.detach().cpu().contiguous()
            if dtype == "BF16":
                raw = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
            else:
                raw = t.to(torch.float32).numpy().tobytes()
            shape = list(t.shape)
        else:
            if dtype == "BF16":
                raise ValueError("BF16 needs torch tensors")
            a = np.ascontiguousarray(t, dtype=np.float32)
            raw, shape = a.tobytes(), list(a.shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            out[name] = u.view(np.float32).reshape(info["shape"])
        else:
            out[name] = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out

#!/usr/bin/env python3
"""Writes a full-size SDXL base-layout (sd_xl_base_1.0) f16 checkpoint with random weights, for
speed and memory benchmarks (never for correctness: the weights mean nothing). Layout from
tests/data/sdxl-keys.tsv (= ../shared/fixtures/sdxl-keys.tsv: 2515 tensors, UNet 1680, VAE 248,
CLIP-L 197, OpenCLIP-G 390); values as ../shared/fixtures/README.md ("Full-size files")
prescribes for SD 1.5, extended to SDXL's extra tensors: weights N(0, 1/fan_in), norm gains
1 + N(0, 0.1^2), biases N(0, 0.05^2), token embeddings N(0, 0.3^2), position embeddings
N(0, 0.1^2), the UNet's cross-attention output projections x0.3, the VAE decoder's last conv
x0.5; position_ids = arange(77); OpenCLIP's logit_scale = ln(100).

Tensors are made and written one at a time (the header first: every shape is known), so the
script needs little memory however large the model. No __metadata__ besides "format": like a
real SDXL file, the heads and defaults come from sdc's conventions for the SDXL layout.

Writes OUTDIR/sdxl-f16.safetensors (default /work/big, outside the repo; 6.9 GB).
Run: /usr/bin/python3 scripts/make_fullsize_sdxl.py [OUTDIR]   (torch; numpy)
"""
import json
import math
import os
import struct
import sys
import time

import torch

KEYS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "sdxl-keys.tsv")
ST_DTYPE = {"float16": ("F16", torch.float16, 2), "float32": ("F32", torch.float32, 4),
            "int64": ("I64", torch.int64, 8)}


def make_tensor(name, shape, g):
    if name.endswith("position_ids"):
        return torch.arange(shape[-1], dtype=torch.float32).reshape(shape)
    if name.endswith("logit_scale"):
        return torch.tensor(math.log(100.0)).reshape(shape)
    if name.endswith("token_embedding.weight"):
        return torch.randn(shape, generator=g) * 0.3
    if name.endswith("position_embedding.weight") or name.endswith("positional_embedding"):
        return torch.randn(shape, generator=g) * 0.1
    if name.endswith(".bias") or name.endswith("in_proj_bias"):
        return torch.randn(shape, generator=g) * 0.05
    if len(shape) == 1:                                   # GroupNorm / LayerNorm gains
        return 1.0 + torch.randn(shape, generator=g) * 0.1
    fan_in = math.prod(shape[1:])
    t = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    if name.startswith("model.diffusion_model.") and "attn2.to_out.0.weight" in name:
        t *= 0.3
    if name == "first_stage_model.decoder.conv_out.weight":
        t *= 0.5
    return t


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "/work/big"
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2048)
    rows = []
    for line in open(KEYS):
        name, dtype, shape = line.rstrip("\n").split("\t")
        rows.append((name, dtype, json.loads(shape)))
    rows.sort()
    hdr, off, nparam = {"__metadata__": {"format": "pt"}}, 0, 0
    for name, dtype, shape in rows:
        st, _, size = ST_DTYPE[dtype]
        nb = math.prod(shape) * size
        hdr[name] = {"dtype": st, "shape": shape, "data_offsets": [off, off + nb]}
        off += nb
        nparam += math.prod(shape)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    path = os.path.join(outdir, "sdxl-f16.safetensors")
    tmp = path + ".tmp"
    t0 = time.time()
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, dtype, shape in rows:
            t = make_tensor(name, shape, g).to(ST_DTYPE[dtype][1])
            assert list(t.shape) == shape, name
            f.write(t.contiguous().numpy().tobytes())
    os.replace(tmp, path)
    print("%s: %d tensors, %d parameters, %.1f GB, %.0f s" % (path, len(rows), nparam, off / 1e9,
                                                             time.time() - t0), flush=True)


if __name__ == "__main__":
    main()

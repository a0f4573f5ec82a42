#!/usr/bin/env python3
"""Writes full-size SD 1.5-layout checkpoints with random weights, for load-time and memory
benchmarks (never for correctness: the weights mean nothing). Layout from
../shared/fixtures/sd15-keys.tsv; values as ../shared/fixtures/README.md ("Full-size files")
prescribes: weights N(0, 1/fan_in), norm gains 1 + N(0, 0.1^2), biases N(0, 0.05^2), token
embeddings N(0, 0.3^2), position embeddings N(0, 0.1^2), the UNet's cross-attention output
projections x0.3, the VAE decoder's last conv x0.5; the ldm schedule buffers computed as ldm does
(linear betas 0.00085..0.012), position_ids = arange(77), model_ema.decay/num_updates.

Writes into OUTDIR (default /work/big, outside the repo, ~13 GB):
  sd15-f32.safetensors, sd15-f32.ckpt   (float32)          [with --f32]
  sd15-f16.safetensors, sd15-f16.ckpt   (float16; int64 position_ids, int32 num_updates)
The .ckpt files are written by PyTorch itself: torch.save({"state_dict": sd}, path).
Run with Debian's python3 (torch + numpy):  /usr/bin/python3 scripts/make_fullsize.py [--f32] [OUTDIR]
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

# The real SD 1.5 tensor list, copied from the fixtures into tests/data/ so a clone has it.
KEYS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "sd15-keys.tsv")


def schedule():
    """ldm DDPM.register_schedule for SD 1.x: linear betas, v_posterior 0."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    pv = betas * (1.0 - ac_prev) / (1.0 - ac)
    return {
        "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac), "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac), "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1), "posterior_variance": pv,
        "posterior_log_variance_clipped": np.log(np.maximum(pv, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }


def make_tensor(name, dtype, shape, g, sched):
    if name in sched:
        return torch.from_numpy(sched[name]).float()
    if name.endswith("position_ids"):
        return torch.arange(shape[-1], dtype=torch.int64).reshape(shape)
    if name == "model_ema.decay":
        return torch.tensor(0.9999, dtype=torch.float32)
    if name == "model_ema.num_updates":
        return torch.tensor(0, dtype=torch.int32)
    if name.endswith("token_embedding.weight"):
        return torch.randn(shape, generator=g) * 0.3
    if name.endswith("position_embedding.weight"):
        return torch.randn(shape, generator=g) * 0.1
    if name.endswith(".bias"):
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


def write_safetensors(path, sd, metadata):
    """Header as safetensors writes it (names sorted, offsets contiguous, padded to 8)."""
    names = sorted(sd)
    st_dtype = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.int32: "I32"}
    hdr, off = {"__metadata__": metadata}, 0
    for n in names:
        t = sd[n]
        nb = t.numel() * t.element_size()
        hdr[n] = {"dtype": st_dtype[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            f.write(sd[n].contiguous().numpy().tobytes())
    os.replace(tmp, path)


def save_pair(outdir, tag, sd):
    meta = {"format": "pt", "model": "sd15-%s: random weights in the SD 1.5 layout (benchmarks only)" % tag}
    t0 = time.time()
    write_safetensors(os.path.join(outdir, "sd15-%s.safetensors" % tag), sd, meta)
    t1 = time.time()
    torch.save({"state_dict": sd}, os.path.join(outdir, "sd15-%s.ckpt" % tag))
    t2 = time.time()
    print("sd15-%s: safetensors %.1f s, ckpt %.1f s" % (tag, t1 - t0, t2 - t1), flush=True)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    outdir = args[0] if args else "/work/big"
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1505)
    sched = schedule()
    sd, nparam = {}, 0
    for line in open(KEYS):
        name, dtype, shape = line.rstrip("\n").split("\t")
        shape = json.loads(shape)
        sd[name] = make_tensor(name, dtype, shape, g, sched)
        assert list(sd[name].shape) == shape, name
        nparam += sd[name].numel()
    print("%d tensors, %d parameters" % (len(sd), nparam), flush=True)
    if "--f32" in sys.argv:
        save_pair(outdir, "f32", sd)
    for n in sd:                                          # f16 in place (frees the f32 copy)
        if sd[n].is_floating_point():
            sd[n] = sd[n].half()
    save_pair(outdir, "f16", sd)


if __name__ == "__main__":
    main()

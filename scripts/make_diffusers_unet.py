#!/usr/bin/env python3
"""make_diffusers_unet.py — writes the UNet of an original-layout SD 1.x/2.x safetensors file
under diffusers' UNet2DConditionModel names (the layout of unet/diffusion_pytorch_model.safetensors),
bytes unchanged, so tests can check that sdc reads the diffusers layout to the same result.

The name tables are those of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py
(the script the fixtures' original-layout files were made with), applied in the other direction.
Like that script they assume SD's topology: 4 levels, 2 resnets per down block, attention on the
first 3 down / last 3 up blocks. Only the standard library is used (no torch, no safetensors).

usage: scripts/make_diffusers_unet.py tests/data/tiny-sd1-fp16.safetensors \
           tests/data/tiny-sd1-unet-diffusers-fp16.safetensors
"""
import json
import struct
import sys

# ---- from convert_diffusers_to_original_stable_diffusion.py: (stable-diffusion, HF Diffusers) ----
unet_conversion_map = [
    ("time_embed.0.weight", "time_embedding.linear_1.weight"),
    ("time_embed.0.bias", "time_embedding.linear_1.bias"),
    ("time_embed.2.weight", "time_embedding.linear_2.weight"),
    ("time_embed.2.bias", "time_embedding.linear_2.bias"),
    ("input_blocks.0.0.weight", "conv_in.weight"),
    ("input_blocks.0.0.bias", "conv_in.bias"),
    ("out.0.weight", "conv_norm_out.weight"),
    ("out.0.bias", "conv_norm_out.bias"),
    ("out.2.weight", "conv_out.weight"),
    ("out.2.bias", "conv_out.bias"),
]
unet_conversion_map_resnet = [
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("emb_layers.1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
]
unet_conversion_map_layer = []
for i in range(4):
    for j in range(2):
        unet_conversion_map_layer.append((f"input_blocks.{3*i + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
        if i < 3:
            unet_conversion_map_layer.append((f"input_blocks.{3*i + j + 1}.1.", f"down_blocks.{i}.attentions.{j}."))
    for j in range(3):
        unet_conversion_map_layer.append((f"output_blocks.{3*i + j}.0.", f"up_blocks.{i}.resnets.{j}."))
        if i > 0:
            unet_conversion_map_layer.append((f"output_blocks.{3*i + j}.1.", f"up_blocks.{i}.attentions.{j}."))
    if i < 3:
        unet_conversion_map_layer.append((f"input_blocks.{3*(i+1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
        unet_conversion_map_layer.append((f"output_blocks.{3*i + 2}.{1 if i == 0 else 2}.", f"up_blocks.{i}.upsamplers.0."))
unet_conversion_map_layer.append(("middle_block.1.", "mid_block.attentions.0."))
for j in range(2):
    unet_conversion_map_layer.append((f"middle_block.{2*j}.", f"mid_block.resnets.{j}."))
# ---- end of the tables ----

PREFIX = "model.diffusion_model."


def to_diffusers(sd_name):
    for sd, hf in unet_conversion_map:
        if sd_name == sd:
            return hf
    v = sd_name
    for sd, hf in unet_conversion_map_layer:
        if v.startswith(sd):
            v = hf + v[len(sd):]
            break
    else:
        raise SystemExit(f"no diffusers name for {sd_name}")
    if "resnets" in v:
        for sd, hf in unet_conversion_map_resnet:
            v = v.replace(sd, hf)
    return v


def main(src, dst):
    raw = open(src, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out, blobs, off = {}, [], 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if not name.startswith(PREFIX):
            continue
        a, b = info["data_offsets"]
        hf = to_diffusers(name[len(PREFIX):])
        assert hf not in out, hf
        out[hf] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [off, off + b - a]}
        blobs.append(raw[base + a:base + b])
        off += b - a
    out["__metadata__"] = {
        "format": "pt",
        "description": f"UNet of {src.split('/')[-1]} under diffusers UNet2DConditionModel names "
                       "(scripts/make_diffusers_unet.py, tables of diffusers' "
                       "convert_diffusers_to_original_stable_diffusion.py); bytes unchanged",
    }
    hdr = json.dumps(out, separators=(",", ":")).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)
    print(f"{dst}: {len(out) - 1} tensors, {off} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])

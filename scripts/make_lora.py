#!/usr/bin/env python3
"""make_lora.py — a random kohya LoRA (rank R) for every attention layer of an SD 1.x-layout model,
for timing LoRA load + merge at full size. Plain Python (struct, random): no torch, no numpy.

usage: make_lora.py KEYS.tsv OUT.safetensors [RANK] [ALPHA]
KEYS.tsv: "name<TAB>dtype<TAB>[shape]" lines of the model (tests/data/sd15-keys.tsv is SD 1.5's).
Modules: the UNet's attn1/attn2 to_q, to_k, to_v, to_out.0 (kohya names: diffusers paths with
'_') and the text encoder's self_attn q/k/v/out_proj; lora_down ~ U(-a, a) with variance 1/in,
lora_up with variance 0.25/R, alpha as given (default R/2); all F16, as kohya writes them."""
import json, random, re, struct, sys

def kohya_unet(key):
    m = re.match(r"model\.diffusion_model\.(input_blocks|middle_block|output_blocks)\.?(\d*)\.1\.(transformer_blocks\.\d+\.attn[12]\.to_(?:q|k|v|out\.0))\.weight$", key)
    if not m: return None
    kind, n, rest = m.group(1), int(m.group(2) or 0), m.group(3)
    if kind == "input_blocks": path = "down_blocks.%d.attentions.%d" % ((n - 1) // 3, (n - 1) % 3)
    elif kind == "output_blocks": path = "up_blocks.%d.attentions.%d" % (n // 3, n % 3)
    else: path = "mid_block.attentions.0"
    return "lora_unet_" + (path + "." + rest).replace(".", "_")

def kohya_te(key):
    m = re.match(r"cond_stage_model\.transformer\.(text_model\.encoder\.layers\.\d+\.self_attn\.[qkvout]+_proj)\.weight$", key)
    return "lora_te_" + m.group(1).replace(".", "_") if m else None

def main():
    keys, out = sys.argv[1], sys.argv[2]
    rank = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    alpha = float(sys.argv[4]) if len(sys.argv) > 4 else rank / 2
    rnd = random.Random(1234)
    tensors = []   # (name, shape, values or scalar)
    for line in open(keys):
        name, _, shape = line.rstrip("\n").split("\t")
        shape = json.loads(shape)
        mod = kohya_unet(name) or kohya_te(name)
        if not mod or len(shape) != 2: continue
        o, i = shape
        a = (3.0 / i) ** 0.5
        down = [rnd.uniform(-a, a) for _ in range(rank * i)]
        b = (0.75 / rank) ** 0.5
        up = [rnd.uniform(-b, b) for _ in range(o * rank)]
        tensors += [(mod + ".lora_down.weight", [rank, i], down), (mod + ".lora_up.weight", [o, rank], up),
                    (mod + ".alpha", [], [alpha])]
    header, off = {}, 0
    for name, shape, vals in tensors:
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [off, off + 2 * len(vals)]}
        off += 2 * len(vals)
    header["__metadata__"] = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank),
                              "ss_network_alpha": str(alpha), "ss_base_model_version": "sd_v1"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, _, vals in tensors:
            f.write(struct.pack("<%de" % len(vals), *vals))
    print("%s: %d modules, rank %d, alpha %g, %.1f MB" % (out, len(tensors) // 3, rank, alpha, (off + len(h)) / 1e6))

main()

#!/usr/bin/env python3
"""make_embedding_pt.py — writes tests/data/embeddings/kittypt.pt: a textual-inversion embedding
as AUTOMATIC1111 saves one (torch.save of {'string_to_token': {'*': 265}, 'string_to_param':
{'*': tensor [2, C]}, 'name', 'step', 'sd_checkpoint', 'sd_checkpoint_name'}, zip format) whose two
vectors are tiny-sd1's token-embedding rows of "red</w>" (736) and "cat</w>" (2368): the prompt
word "kittypt" must then give exactly the conditioning of "red cat".

Standard library only: the pickle is assembled opcode by opcode (protocol 2, as torch.save writes
it) and stored in a zip like PyTorch's (stored entries, archive/ prefix). Run from the repo root:
    python3 scripts/make_embedding_pt.py
The output is committed; tests read it (they never run this script)."""
import json, os, struct, zipfile

MODEL = "tests/data/tiny-sd1.safetensors"
KEY = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
IDS = (736, 2368)

def s(x):
    b = x.encode()
    return b"X" + struct.pack("<I", len(b)) + b

def n(v):
    return b"K" + bytes([v]) if 0 <= v < 256 else b"M" + struct.pack("<H", v) if v < 65536 else b"J" + struct.pack("<i", v)

def g(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"

def tup(*items):
    return b"(" + b"".join(items) + b"t"

def sdict(items):
    return b"}(" + b"".join(s(k) + v for k, v in items) + b"u"

b = open(MODEL, "rb").read()
hl = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + hl])
t = h[KEY]
assert t["dtype"] == "F32"
C = t["shape"][1]
base = 8 + hl + t["data_offsets"][0]
rows = b"".join(b[base + i * C * 4: base + (i + 1) * C * 4] for i in IDS)

storage = tup(s("storage"), g("torch", "FloatStorage"), s("0"), s("cpu"), n(2 * C)) + b"Q"
tensor = (g("torch._utils", "_rebuild_tensor_v2") +
          tup(storage, n(0), tup(n(2), n(C)), tup(n(C), n(1)), b"\x88",
              g("collections", "OrderedDict") + b")R") + b"R")
pkl = b"\x80\x02" + sdict([("string_to_token", sdict([("*", n(265))])),
                           ("string_to_param", sdict([("*", tensor)])),
                           ("name", s("kittypt")), ("step", n(0)),
                           ("sd_checkpoint", b"N"), ("sd_checkpoint_name", b"N")]) + b"."
os.makedirs("tests/data/embeddings", exist_ok=True)
with zipfile.ZipFile("tests/data/embeddings/kittypt.pt", "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", pkl)
    z.writestr("archive/byteorder", b"little")
    z.writestr("archive/data/0", rows)
    z.writestr("archive/version", b"3\n")
print("tests/data/embeddings/kittypt.pt: 2 vectors of width", C)

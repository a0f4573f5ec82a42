#!/usr/bin/env python3
"""Writes tests/data/malformed/: one small safetensors-shaped file per corruption class of
../shared/LOADER-SAFETY.md (classes 1-7 and 19), and expected.tsv: file, exit code, the fragment
the one-line error must contain. Standard library only. Run from the repo root:
    python3 scripts/make_malformed_safetensors.py
The files are committed; tests read them (they never run this script)."""
import json, os, struct

OUT = "tests/data/malformed"
rows = []


def raw(name, data, code, frag):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    rows.append((os.path.join(OUT, name), code, frag))


def st(name, header, data=b"", code=2, frag="", hlen=None, pad=True):
    """header: str (raw JSON text) or dict; data: the data section."""
    h = header if isinstance(header, (str, bytes)) else json.dumps(header, separators=(",", ":"))
    if isinstance(h, str):
        h = h.encode("utf-8")
    if pad:
        h += b" " * (-(8 + len(h)) % 8)
    n = len(h) if hlen is None else hlen
    raw(name, struct.pack("<Q", n) + h + data, code, frag)


def ent(dtype, shape, a, b):
    return {"dtype": dtype, "shape": shape, "data_offsets": [a, b]}


os.makedirs(OUT, exist_ok=True)
f32x2 = struct.pack("<2f", 1.5, -2.0)

# --- valid controls (exit 0): they must load
st("ok_small.safetensors", {"__metadata__": {"format": "pt"}, "a": ent("F32", [2], 0, 8)}, f32x2, 0, "")
st("ok_empty_tensor.safetensors", {"e": ent("F16", [0, 3], 0, 0), "a": ent("F32", [2], 0, 8)}, f32x2, 0, "")
st("ok_metadata_only.safetensors", {"__metadata__": {"k": "v"}}, b"", 0, "")
# class 7: data not aligned for its dtype (header not padded): sdc reads views by copy, so it loads
st("ok_unaligned_c7.safetensors", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32x2, 0, "",
   pad=False)

# --- 1: header length
raw("c1_short.safetensors", b"\x10\x00\x00", 2, "too short")
raw("c1_len_only.safetensors", struct.pack("<Q", 0), 2, "header length is 0")
st("c1_len_over_limit.safetensors", {"a": ent("F32", [2], 0, 8)}, f32x2, 2, "over the 100 MB limit",
   hlen=100_000_001)
st("c1_len_overflow.safetensors", {"a": ent("F32", [2], 0, 8)}, f32x2, 2, "over the 100 MB limit",
   hlen=2**64 - 1)
st("c1_len_past_eof.safetensors", {"a": ent("F32", [2], 0, 8)}, f32x2, 2, "past end of file", hlen=4096)

# --- 2: UTF-8, JSON, object, depth
st("c2_not_utf8.safetensors", b'{"a\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32x2, 2,
   "not valid UTF-8")
st("c2_overlong_utf8.safetensors", b'{"a\xc0\xaf":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32x2,
   2, "not valid UTF-8")
st("c2_surrogate_utf8.safetensors", b'{"a\xed\xa0\x80":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
   f32x2, 2, "not valid UTF-8")
st("c2_not_json.safetensors", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}', f32x2, 2,
   "not valid JSON")
st("c2_not_object.safetensors", '[{"dtype":"F32"}]', f32x2, 2, "not a JSON object")
st("c2_too_deep.safetensors", '{"a":' + "[" * 40 + "]" * 40 + "}", b"", 2, "nested deeper")
st("c2_trailing_garbage.safetensors", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}xx', f32x2, 2,
   "bytes after the JSON object")
st("c2_nul_in_key.safetensors", '{"a\\u0000b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32x2, 2,
   "NUL")
st("c2_control_char.safetensors", '{"a\x01":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32x2, 2,
   "control character")

# --- 3: keys and fields
st("c3_duplicate_key.safetensors",
   '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
   f32x2, 2, "duplicate key 'a'")
st("c3_duplicate_field.safetensors", '{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}',
   f32x2, 2, "duplicate key 'dtype'")
st("c3_missing_field.safetensors", '{"a":{"shape":[2],"data_offsets":[0,8]}}', f32x2, 2,
   "missing field 'dtype'")
st("c3_extra_field.safetensors", {"a": dict(ent("F32", [2], 0, 8), extra=1)}, f32x2, 2,
   "unexpected field 'extra'")
st("c3_entry_not_object.safetensors", '{"a":[1,2]}', b"", 2, "entry is not an object")
st("c3_metadata_not_string.safetensors", {"__metadata__": {"k": 1}, "a": ent("F32", [2], 0, 8)}, f32x2, 2,
   "__metadata__ value is not a string")
st("c3_metadata_not_object.safetensors", {"__metadata__": "x", "a": ent("F32", [2], 0, 8)}, f32x2, 2,
   "__metadata__ is not an object")
st("c3_metadata_duplicate.safetensors",
   '{"__metadata__":{"k":"v","k":"w"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32x2, 2,
   "duplicate key 'k'")
st("c3_metadata_too_many_keys.safetensors",
   {"__metadata__": {"k%d" % i: "" for i in range(4097)}, "a": ent("F32", [2], 0, 8)}, f32x2, 2,
   "__metadata__ has 4097 keys (at most 4096)")

# --- 4: dtypes
st("c4_unknown_dtype.safetensors", {"a": ent("Q7", [2], 0, 8)}, f32x2, 2, "unknown dtype 'Q7'")
st("c4_unsupported_dtype.safetensors", {"a": ent("U32", [2], 0, 8)}, f32x2, 2, "unsupported dtype U32")
st("c4_dtype_not_string.safetensors", {"a": ent(4, [2], 0, 8)}, f32x2, 2, "dtype is not a string")

# --- 5: shapes
st("c5_dim_not_integer.safetensors", {"a": ent("F32", [2.5], 0, 8)}, f32x2, 2, "not a non-negative integer")
st("c5_dim_string.safetensors", {"a": ent("F32", ["2"], 0, 8)}, f32x2, 2, "not a non-negative integer")
st("c5_shape_not_array.safetensors", {"a": ent("F32", 2, 0, 8)}, f32x2, 2, "shape is not an array")
st("c5_dim_negative.safetensors", {"a": ent("F32", [-2], 0, 8)}, f32x2, 2, "negative dim")
st("c5_dim_huge.safetensors", {"a": ent("F32", [2**49], 0, 8)}, f32x2, 2, "too large")
st("c5_too_many_dims.safetensors", {"a": ent("F32", [1] * 9 + [2], 0, 8)}, f32x2, 2, "10 dims")
st("c5_numel_overflow.safetensors", {"a": ent("F32", [2**40, 2**40], 0, 8)}, f32x2, 2,
   "element count overflows")
st("c5_bytes_overflow.safetensors", {"a": ent("F64", [2**47, 2**15], 0, 8)}, f32x2, 2, "byte size overflows")

# --- 6: offsets
st("c6_offsets_one.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, f32x2, 2,
   "data_offsets is not two")
st("c6_offsets_negative.safetensors", {"a": ent("F32", [2], -8, 0)}, f32x2, 2, "data_offsets is not two")
st("c6_begin_after_end.safetensors", {"a": ent("F32", [0], 8, 0)}, f32x2, 2, "begin 8 > end 0")
st("c6_gap.safetensors", {"a": ent("F32", [1], 4, 8)}, f32x2, 2, "gap of 4 unused bytes")
st("c6_overlap.safetensors", {"a": ent("F32", [2], 0, 8), "b": ent("F32", [1], 4, 8)}, f32x2, 2, "overlaps")
st("c6_past_eof.safetensors", {"a": ent("F32", [4], 0, 16)}, f32x2, 2, "past end of file")
st("c6_span_mismatch.safetensors", {"a": ent("F32", [3], 0, 8)}, f32x2, 2, "span 8 bytes but")
st("c6_trailing_bytes.safetensors", {"a": ent("F32", [1], 0, 4)}, f32x2, 2, "4 bytes left over")
st("c6_polyglot.safetensors", {"a": ent("F32", [2], 0, 8)}, f32x2 + b"PK\x03\x04zipzipzip", 2,
   "bytes left over")

# --- 19: files that are not models
raw("c19_empty.safetensors", b"", 2, "empty file")
raw("c19_text.safetensors", b"this is a text file, not a model\n", 2, "not a model file")

with open(os.path.join(OUT, "expected.tsv"), "w") as f:
    f.write("# file\texit\tmessage fragment (written by scripts/make_malformed_safetensors.py)\n")
    for p, c, frag in rows:
        f.write(f"{p}\t{c}\t{frag}\n")
print(f"wrote {len(rows)} files to {OUT}")

#!/usr/bin/env python3
"""Writes tests/data/malformed/c8..c18 *.ckpt: one small PyTorch-checkpoint-shaped file per
corruption class 8-18 of ../shared/LOADER-SAFETY.md (pickle, zip, legacy), valid controls
(ok_*.ckpt), and tests/data/malformed/expected_ckpt.tsv: file, `sdc inspect` exit code (0 loads,
2 malformed, 3 dangerous pickle reported), the fragment its one-line message must contain.

Standard library only (struct, zipfile, zlib): the pickles are assembled opcode by opcode and the
zip containers written by hand like PyTorch's writer (stored entries, data aligned to 64 bytes,
zip64 end records), so every field can be corrupted on purpose. Nothing here imports torch or
unpickles anything. Run from the repo root:
    python3 scripts/make_malformed_ckpt.py
The outputs are committed; tests read them (they never run this script)."""
import os
import struct
import zlib

OUT = "tests/data/malformed"
rows = []

# ------------------------------------------------------------------------------------------------
# pickle assembly (protocol 2, as torch.save writes it)


def s(x):  # BINUNICODE
    b = x.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def n(v):  # the int opcodes torch uses
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    b = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def g(mod, name):  # GLOBAL
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def pid(stype, key, numel, legacy=False):
    items = [s("storage"), g("torch", stype), s(key), s("cpu"), n(numel)]
    if legacy:
        items.append(b"N")
    return tup(*items) + b"Q"


ODICT = g("collections", "OrderedDict") + b")R"


def tensor(stype, key, numel, offset, size, stride, legacy=False, storage=None):
    st = storage if storage is not None else pid(stype, key, numel, legacy)
    return (g("torch._utils", "_rebuild_tensor_v2") +
            tup(st, n(offset), tup(*map(n, size)), tup(*map(n, stride)), b"\x89", ODICT) + b"R")


def sdict(items):  # {k: v, ...} via EMPTY_DICT MARK ... SETITEMS
    return b"}(" + b"".join(s(k) + v for k, v in items) + b"u"


def ckpt_pickle(weights, extra=()):
    """{'state_dict': {...weights}, 'global_step': 7, *extra}"""
    return b"\x80\x02" + sdict([("state_dict", sdict(weights)), ("global_step", n(7))] + list(extra)) + b"."


# the tiny model: w f32 [2,3] (storage 0), b f16 [3] (storage 1), n i64 scalar (storage 2)
W = struct.pack("<6f", 1.0, -2.0, 0.5, 3.25, -0.125, 8.0)
B = struct.pack("<3e", 1.5, -0.25, 2.0)
N = struct.pack("<q", 123456789)
STORAGES = [("0", W), ("1", B), ("2", N)]


def weights(legacy=False):
    return [("w", tensor("FloatStorage", "0", 6, 0, (2, 3), (3, 1), legacy)),
            ("b", tensor("HalfStorage", "1", 3, 0, (3,), (1,), legacy)),
            ("n", tensor("LongStorage", "2", 1, 0, (), (), legacy))]


GOOD_PKL = ckpt_pickle(weights())

# ------------------------------------------------------------------------------------------------
# zip writer, shaped like PyTorch's (miniz): stored, 64-byte aligned data, zip64 end records


def zip_bytes(entries, zip64_end=True, align=64, prepend=b"", hook=None):
    """entries: list of dicts {name, data, method=0, flags=0, crc=None, local_name=None,
    local_size=None, cd_size=None, z64extra=False}. hook(parts) may edit the parts before joining."""
    out = bytearray(prepend)
    cds = []
    for e in entries:
        name = e["name"].encode()
        data = e["data"]
        crc = e.get("crc", zlib.crc32(data))
        method, flags = e.get("method", 0), e.get("flags", 0)
        off = len(out)
        lname = e.get("local_name", e["name"]).encode()
        base = off + 30 + len(lname) + 4
        pad = (-base) % align if align else 0
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # PyTorch's "FB" padding field
        lsize = e.get("local_size", len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0, crc,
                           lsize, lsize, len(lname), len(extra)) + lname + extra
        out += data
        cds.append((name, crc, e.get("cd_size", len(data)), off, method, flags,
                    e.get("z64extra", False), e.get("cd_offset", None)))
    cd_off = len(out)
    for name, crc, size, off, method, flags, z64, cdo in cds:
        off = off if cdo is None else cdo
        if z64:
            ex = struct.pack("<HHQQQ", 1, 24, size, size, off)
            out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 45, flags, method, 0, 0, crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(name), len(ex), 0, 0, 0, 0, 0xFFFFFFFF) + name + ex
        else:
            out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, flags, method, 0, 0, crc,
                               size, size, len(name), 0, 0, 0, 0, 0, off) + name
    cd_size = len(out) - cd_off
    count = len(cds)
    parts = {"count": count, "cd_size": cd_size, "cd_off": cd_off,
             "z64_count": count, "z64_cd_off": cd_off, "eocd_count": count, "eocd_cd_off": cd_off}
    if hook:
        hook(parts)
    if zip64_end:
        z = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, parts["z64_count"],
                           parts["z64_count"], parts["cd_size"], parts["z64_cd_off"])
        out += struct.pack("<IIQI", 0x07064B50, 0, z, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, parts["eocd_count"], parts["eocd_count"],
                       parts["cd_size"], parts["eocd_cd_off"], 0)
    return bytes(out)


def torch_zip(pkl=GOOD_PKL, prefix="archive/", storages=STORAGES, extra=(), version=b"3\n",
              byteorder=b"little", **kw):
    ents = [{"name": prefix + "data.pkl", "data": pkl}]
    if byteorder is not None:
        ents.append({"name": prefix + "byteorder", "data": byteorder})
    ents += [{"name": prefix + "data/" + k, "data": d} for k, d in storages]
    if version is not None:
        ents.append({"name": prefix + "version", "data": version})
    ents += list(extra)
    return zip_bytes(ents, **kw)


def legacy(obj=None, keys=("0", "1", "2"), storages=STORAGES, magic=0x1950A86A20F9469CFC6C,
           protocol=1001, little=True, tail=b"", counts=None):
    out = b"\x80\x02" + n(magic) + b"."
    out += b"\x80\x02" + n(protocol) + b"."
    out += (b"\x80\x02" + sdict([("protocol_version", n(1001)), ("little_endian", b"\x88" if little else b"\x89"),
                                 ("type_sizes", sdict([("short", n(2)), ("int", n(4)), ("long", n(4))]))]) + b".")
    out += obj if obj is not None else ckpt_pickle(weights(legacy=True))
    out += b"\x80\x02]q\x00(" + b"".join(s(k) for k in keys) + b"e."
    for i, (k, d) in enumerate(storages):
        size = {"0": 4, "1": 2, "2": 8}[k]
        cnt = len(d) // size if counts is None else counts[i]
        out += struct.pack("<q", cnt) + d
    return out + tail


# ------------------------------------------------------------------------------------------------


def put(name, data, code, frag):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    rows.append((os.path.join(OUT, name), code, frag))


def zpkl(name, pkl, code, frag, **kw):
    put(name, torch_zip(pkl=pkl, **kw), code, frag)


os.makedirs(OUT, exist_ok=True)

# --- valid controls
put("ok_tiny.ckpt", torch_zip(), 0, "")
put("ok_tiny_plain_eocd.ckpt", torch_zip(zip64_end=False), 0, "")
put("ok_tiny_zip64_extra.ckpt", zip_bytes(
    [{"name": "m/data.pkl", "data": GOOD_PKL, "z64extra": True}] +
    [{"name": "m/data/" + k, "data": d, "z64extra": True} for k, d in STORAGES] +
    [{"name": "m/version", "data": b"3\n", "z64extra": True}]), 0, "")
put("ok_tiny_legacy.ckpt", legacy(), 0, "")
put("ok_tiny_prefix.ckpt", torch_zip(prefix="my-model/", byteorder=None), 0, "")
# the layout newer torch writes: .data/version (read first), .data/serialization_id, byteorder
put("ok_tiny_torch2_layout.ckpt", torch_zip(extra=[{"name": "archive/.data/version", "data": b"3\n"},
                                                   {"name": "archive/.data/serialization_id",
                                                    "data": b"1234567890123456789012345678901234567890"}]), 0, "")
# weights at the top level (no state_dict), two views into one shared storage, a Parameter
shared = pid("FloatStorage", "0", 6)
top = (b"\x80\x02}(" + s("first") + tensor("FloatStorage", "0", 6, 0, (3,), (1,), storage=shared) +
       s("second") + g("torch._utils", "_rebuild_parameter") +
       tup(tensor("FloatStorage", "0", 6, 3, (3,), (1,), storage=shared), b"\x88", ODICT) + b"R" + b"u.")
put("ok_shared_storage.ckpt", torch_zip(pkl=top, storages=[("0", W)]), 0, "")
# a lightning-style checkpoint: an unknown (not dangerous) global beside the weights
cb = g("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint") + b")\x81" + sdict([("k", n(1))]) + b"b"
put("ok_lightning.ckpt", torch_zip(pkl=ckpt_pickle(weights(), [("callbacks", cb)])), 0, "")

# --- 8: PROTO, opcodes
zpkl("c8_no_proto.ckpt", GOOD_PKL[2:], 2, "does not start with PROTO")
zpkl("c8_proto_repeated.ckpt", b"\x80\x02" + GOOD_PKL, 2, "PROTO repeated or not at the start")
zpkl("c8_unknown_opcode.ckpt", GOOD_PKL[:-1] + b"\xff.", 2, "unknown opcode 0xff: archive/data.pkl byte")

# --- 9: globals and opcode targets
evil = g("os", "system") + tup(s("echo pwned")) + b"R"
zpkl("c9_os_system.ckpt", ckpt_pickle(weights(), [("x", evil)]), 3, "os.system")
zpkl("c9_eval_only.ckpt", b"\x80\x02" + g("builtins", "eval") + tup(s("print(1)")) + b"R.", 3, "builtins.eval")
put("c9_raw_pickle_hostile.ckpt", b"\x80\x02" + g("subprocess", "Popen") + tup(tup(s("ls"))) + b"R.", 3,
    "subprocess.Popen")
put("c9_legacy_hostile.ckpt", legacy(obj=ckpt_pickle(weights(legacy=True), [("x", evil)])), 3, "os.system")
zpkl("c9_setitem_on_list.ckpt", b"\x80\x02]" + s("k") + n(1) + b"s.", 2, "SETITEM on a list")
zpkl("c9_append_on_dict.ckpt", b"\x80\x02}" + n(1) + b"a.", 2, "APPEND on a dict")
zpkl("c9_reduce_on_int.ckpt", b"\x80\x02" + n(1) + b")R.", 2, "REDUCE on a int, which is not callable")

# --- 10: persistent ids and storage sizes
zpkl("c10_pid_not_tuple.ckpt", ckpt_pickle([("w", g("torch._utils", "_rebuild_tensor_v2") +
                                                 tup(s("0") + b"Q", n(0), tup(n(6)), tup(n(1)), b"\x89", ODICT) + b"R")]),
     2, "persistent id is a str")
zpkl("c10_pid_bad_type.ckpt", ckpt_pickle([("w", tup(s("storage"), n(3), s("0"), s("cpu"), n(6)) + b"Q")]), 2,
     "not a torch storage type")
zpkl("c10_numel_overflow.ckpt", ckpt_pickle([("w", tensor("DoubleStorage", "0", 2**62, 0, (6,), (1,)))]), 2,
     "elements overflow")
zpkl("c10_storage_type_unsupported.ckpt", ckpt_pickle([("w", tensor("QInt8Storage", "0", 6, 0, (6,), (1,)))]), 2,
     "persistent id names torch.QInt8Storage, a storage type sdc does not read")
zpkl("c10_storage_larger_than_entry.ckpt", ckpt_pickle([("w", tensor("FloatStorage", "0", 7, 0, (7,), (1,)))]),
     2, "is larger than its zip entry")

# --- 11: _rebuild_tensor_v2 arguments
zpkl("c11_storage_not_storage.ckpt", ckpt_pickle([("w", g("torch._utils", "_rebuild_tensor_v2") +
                                                       tup(n(5), n(0), tup(n(6)), tup(n(1)), b"\x89", ODICT) + b"R")]),
     2, "storage argument is a int")
zpkl("c11_negative_offset.ckpt", ckpt_pickle([("w", tensor("FloatStorage", "0", 6, -1, (6,), (1,)))]), 2,
     "bad storage offset")
zpkl("c11_too_many_dims.ckpt", ckpt_pickle([("w", tensor("FloatStorage", "0", 6, 0, (1,) * 9, (1,) * 9))]), 2,
     "9 dims (at most 8)")
zpkl("c11_extent_past_storage.ckpt", ckpt_pickle([("w", tensor("FloatStorage", "0", 6, 2, (2, 3), (3, 1)))]), 2,
     "runs past its storage '0' of 6 elements")
zpkl("c11_unsupported_rebuild.ckpt", ckpt_pickle([("q", g("torch._utils", "_rebuild_qtensor") +
                                                      tup(n(0), n(0), tup(n(6)), tup(n(1))) + b"R")]), 2,
     "tensor 'q' is built by torch._utils._rebuild_qtensor, which sdc does not read")
zpkl("c11_non_contiguous.ckpt", ckpt_pickle([("w", tensor("FloatStorage", "0", 6, 0, (3, 2), (1, 3)))]), 2,
     "tensor 'w' has non-contiguous strides (1,3)")

# --- 12: memo, stack, MARK
zpkl("c12_memo_unset.ckpt", b"\x80\x02h\x09.", 2, "memo GET of unset slot 9")
zpkl("c12_stack_underflow.ckpt", b"\x80\x02" + n(1) + b"0R.", 2, "stack underflow in REDUCE")
zpkl("c12_tuple_without_mark.ckpt", b"\x80\x02" + n(1) + b"t.", 2, "TUPLE without MARK")
zpkl("c12_setitems_without_mark.ckpt", b"\x80\x02}" + s("k") + n(1) + b"u.", 2, "SETITEMS without MARK")

# --- 13: budgets (references, never copies: the DUP tree is a valid, tiny pickle)
zpkl("c13_deep_nesting.ckpt", b"\x80\x02N" + b"\x85" * 300 + b".", 2, "nested deeper than 256")
zpkl("c13_too_many_marks.ckpt", b"\x80\x02" + b"(" * 300 + b".", 2, "more than 256 open MARKs")
zpkl("c13_memo_index_huge.ckpt", b"\x80\x02Nr\xff\xff\xff\x7f.", 2, "memo index 2147483647 over the limit")
zpkl("c13_dup_expansion.ckpt", b"\x80\x02]" + b"2\x86" * 64 + b"0" + ckpt_pickle(weights())[2:], 0, "")

# --- 14: strings, STOP
zpkl("c14_string_truncated.ckpt", b"\x80\x02X\xff\x00\x00\x00abc", 2, "BINUNICODE of 255 bytes runs past the end")
zpkl("c14_negative_length.ckpt", b"\x80\x02T\xf0\xff\xff\xffabc.", 2, "BINSTRING with negative length")
zpkl("c14_bad_utf8.ckpt", ckpt_pickle([("w\xff", b"N")]).replace(b"w\xc3\xbf", b"w\xff\xfe"), 2,
     "BINUNICODE is not valid UTF-8")
zpkl("c14_no_stop.ckpt", GOOD_PKL[:-1], 2, "no STOP before the end")
zpkl("c14_control_char_name.ckpt", ckpt_pickle([("w\nfake line", tensor("FloatStorage", "0", 6, 0, (6,), (1,)))]),
     2, "a tensor name holds control character 0x0a")

# --- 15: zip structure
good = torch_zip()
put("c15_no_local_header.ckpt", b"#!/bin/sh\n" + good, 2, "not a model file")
put("c15_no_eocd.ckpt", good[:-22], 2, "end-of-central-directory record not found")


def h_cd_oob(p):
    p["z64_cd_off"] = p["eocd_cd_off"] = 1 << 20


put("c15_cd_out_of_bounds.ckpt", torch_zip(hook=h_cd_oob), 2, "central directory")


def h_count(p):
    p["z64_count"] = p["eocd_count"] = p["count"] + 1


put("c15_count_mismatch.ckpt", torch_zip(hook=h_count), 2, "zip entry count")


def h_z64(p):
    p["z64_count"] = p["count"] + 3


put("c15_zip64_inconsistent.ckpt", torch_zip(hook=h_z64), 2, "zip64 record disagrees")


def h_z64_missing(p):
    p["eocd_cd_off"] = 0xFFFFFFFF


put("c15_zip64_missing.ckpt", torch_zip(zip64_end=False, hook=h_z64_missing), 2, "zip64 locator missing")

# --- 16: entries
deflated = zlib.compress(W)[2:-4]
put("c16_deflated.ckpt", zip_bytes([{"name": "archive/data.pkl", "data": GOOD_PKL},
                                    {"name": "archive/data/0", "data": deflated, "method": 8}]), 2,
    "is compressed (method 8, deflate)")
put("c16_encrypted.ckpt", zip_bytes([{"name": "archive/data.pkl", "data": GOOD_PKL, "flags": 1}]), 2, "is encrypted")
put("c16_local_mismatch.ckpt", torch_zip(extra=[{"name": "archive/x", "data": b"1", "local_name": "archive/y"}]), 2,
    "local header disagrees with the central directory")
put("c16_local_size_mismatch.ckpt", torch_zip(extra=[{"name": "archive/x", "data": b"12", "local_size": 1}]), 2,
    "local header sizes/crc disagree")
put("c16_data_past_eof.ckpt", torch_zip(extra=[{"name": "archive/x", "data": b"1", "cd_size": 1 << 30,
                                                "local_size": 1 << 30}]), 2, "runs past the end of the file")
# entry b's local header sits inside entry a's data: the two overlap
inner_hdr = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, zlib.crc32(b"zz"), 2, 2, 9, 0) + b"archive/b" + b"zz"


def overlap_zip():
    a_data = b"...." + inner_hdr
    z = torch_zip(extra=[{"name": "archive/a", "data": a_data}])
    # find where a's data starts and add a central entry for b pointing 4 bytes into it
    a_off = z.index(b"...." + inner_hdr) + 4
    ents = [{"name": "archive/data.pkl", "data": GOOD_PKL}, {"name": "archive/byteorder", "data": b"little"}]
    ents += [{"name": "archive/data/" + k, "data": d} for k, d in STORAGES]
    ents += [{"name": "archive/version", "data": b"3\n"}, {"name": "archive/a", "data": a_data},
             {"name": "archive/b", "data": b"zz", "cd_offset": a_off, "skip_local": True}]
    return ents, a_off


def zip_with_phantom(ents):
    real = [e for e in ents if not e.get("skip_local")]
    ph = [e for e in ents if e.get("skip_local")]
    z = zip_bytes(real)
    # rebuild with the phantom central entries appended (their local headers live inside 'a')
    cds = []
    for e in ph:
        name = e["name"].encode()
        cds.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, 0, 0, 0, zlib.crc32(e["data"]),
                               len(e["data"]), len(e["data"]), len(name), 0, 0, 0, 0, 0, e["cd_offset"]) + name)
    # parse the end records of z to splice: find the zip64 end record
    z64 = z.rindex(struct.pack("<I", 0x06064B50))
    cd_off = struct.unpack_from("<Q", z, z64 + 48)[0]
    count = struct.unpack_from("<Q", z, z64 + 32)[0] + len(cds)
    cd = z[cd_off:z64] + b"".join(cds)
    body = z[:cd_off]
    out = body + cd
    zz = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, count, count, len(cd), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, zz, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(cd), cd_off, 0)
    return out


ents, _ = overlap_zip()
put("c16_overlap.ckpt", zip_with_phantom(ents), 2, "overlap")
put("c16_duplicate_names.ckpt", torch_zip(extra=[{"name": "archive/data/0", "data": W}]), 2,
    "duplicate zip entry name 'archive/data/0'")
put("c16_missing_data_record.ckpt", torch_zip(storages=STORAGES[:2]), 2, "has no zip entry 'archive/data/2'")

# --- 17: records
put("c17_no_data_pkl.ckpt", zip_bytes([{"name": "archive/data/0", "data": W},
                                       {"name": "archive/version", "data": b"3\n"}]), 2, "without data.pkl")
put("c17_big_endian.ckpt", torch_zip(byteorder=b"big"), 2, "big-endian checkpoint")
put("c17_version_unsupported.ckpt", torch_zip(version=b"99\n"), 2, "outside the supported range")
put("c17_no_version.ckpt", torch_zip(version=None), 2, "has no 'archive/version' record")
put("c17_constants_pkl.ckpt", torch_zip(extra=[{"name": "archive/constants.pkl", "data": b"\x80\x02)."}]), 2,
    "TorchScript archive")
# torch.jit.save's archive with its code deflated: named as TorchScript, not as "compressed entry"
code = b"class M(Module):\n  def forward(self, x):\n    return x\n" * 4
put("c17_torchscript_deflated.ckpt",
    zip_bytes([{"name": "archive/code/__torch__/m.py", "data": zlib.compress(code)[2:-4], "method": 8},
               {"name": "archive/data.pkl", "data": GOOD_PKL},
               {"name": "archive/constants.pkl", "data": b"\x80\x02)."},
               {"name": "archive/version", "data": b"3\n"}]), 2, "TorchScript archive")
put("c17_outside_prefix.ckpt", torch_zip(extra=[{"name": "other/x", "data": b"1"}]), 2,
    "lies outside the archive folder 'archive/'")
put("c17_bad_crc.ckpt", zip_bytes([{"name": "archive/data.pkl", "data": GOOD_PKL, "crc": 1234}] +
                                  [{"name": "archive/data/" + k, "data": d} for k, d in STORAGES] +
                                  [{"name": "archive/version", "data": b"3\n"}]), 2, "CRC-32")

# --- 18: legacy
put("c18_wrong_magic.ckpt", legacy(magic=12345), 2, "wrong magic number")
put("c18_wrong_protocol.ckpt", legacy(protocol=1000), 2, "protocol is not 1001")
put("c18_big_endian.ckpt", legacy(little=False), 2, "big-endian legacy checkpoint")
put("c18_key_not_in_pickle.ckpt", legacy(keys=("0", "1", "7")), 2, "'7' is not named by the pickled object")
put("c18_key_count.ckpt", legacy(keys=("0", "1")), 2, "has 2 keys but the object names 3 storages")
put("c18_numel_mismatch.ckpt", legacy(counts=(5, 3, 1)), 2, "holds 5 elements but the pickle says 6")
full = legacy()
put("c18_cut_in_header.ckpt", full[:len(full) - len(N) - 4], 2, "cut short in the header of storage '2'")
put("c18_cut_in_data.ckpt", full[:-3], 2, "cut short in storage '2'")
put("c18_trailing_bytes.ckpt", legacy(tail=b"PK\x03\x04"), 2, "4 bytes after the last legacy storage")
cut = full.index(b"\x80\x02]q\x00(")
put("c18_cut_before_keys.ckpt", full[:cut], 2, "cut short before its storage keys pickle")

with open(os.path.join(OUT, "expected_ckpt.tsv"), "w") as f:
    f.write("# file\texit\tmessage fragment (written by scripts/make_malformed_ckpt.py; exit as `sdc inspect`)\n")
    for r in rows:
        f.write("%s\t%d\t%s\n" % r)
print("wrote %d files" % len(rows))

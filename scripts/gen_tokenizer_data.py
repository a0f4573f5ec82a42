#!/usr/bin/env python3
"""gen_tokenizer_data.py — writes tokenizer/tok_data.c: the CLIP BPE vocabulary and merges, and
the Unicode/ftfy tables the tokenizer needs, as compact C source.

Usage: python3 scripts/gen_tokenizer_data.py [FIXTURE_TOKENIZER_DIR] [OUT.c]
  defaults: ../shared/fixtures/tokenizer (vocab.json, merges.txt), tokenizer/tok_data.c

What is generated (see tokenizer/tok_data.h for the C side):
  * the 49408 token strings in id order, '\\0'-separated, one string literal blob;
  * per merge rank r (token 512 + r = left + right), the byte length of `left`;
  * Unicode tables from this Python's unicodedata / str methods (Python 3.11: Unicode 14.0):
    regex classes \\p{L} (plus U+0345, which `regex` matches as a letter under IGNORECASE
    because its case variants are letters) and \\p{N}; str.isspace(); str.lower() (single
    code point mappings; U+0130 and the final sigma are handled in code); Cased and
    Case_Ignorable (for the final sigma rule CPython applies); NFC data (canonical
    combining classes, full canonical decompositions, primary composites);
  * ftfy 6.1.1's tables: HTML_ENTITIES (html5 names ending in ';' plus the all-caps variants),
    WIDTH_MAP, LIGATURES, C1 → sloppy windows-1252, CONTROL_CHARS; html.unescape's numeric
    character reference replacement tables (_invalid_charrefs, _invalid_codepoints).
Everything is data read from the reference behaviour; no behaviour is decided here.
"""
import html
import html.entities
import json
import os
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fixtures", "tokenizer")
dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tokenizer", "tok_data.c")

vocab = json.load(open(os.path.join(src, "vocab.json"), encoding="utf-8"))
lines = open(os.path.join(src, "merges.txt"), encoding="utf-8").read().split("\n")
assert lines[0].startswith("#version"), "merges.txt: no #version line"
merges = [l.split(" ") for l in lines[1:] if l]
assert all(len(m) == 2 for m in merges)

N_VOCAB = 49408
inv = {i: t for t, i in vocab.items()}
assert len(vocab) == N_VOCAB and sorted(inv) == list(range(N_VOCAB)), "vocab is not 0..49407"
assert len(merges) == N_VOCAB - 512 - 2
for r, (a, b) in enumerate(merges):
    assert vocab[a + b] == 512 + r, "merge %d does not produce token %d" % (r, 512 + r)
    # Parts exist before the merge that joins them (so one BPE pass per rank is enough).
    assert vocab[a] < 512 + r and vocab[b] < 512 + r
assert inv[49406] == "<|startoftext|>" and inv[49407] == "<|endoftext|>"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


b2u = bytes_to_unicode()
byte_id = [vocab[b2u[b]] for b in range(256)]
for b in range(256):
    assert vocab[b2u[b] + "</w>"] == byte_id[b] + 256


# ---------------------------------------------------------------- C emitters
def c_string_blob(chunks, width=100):
    """chunks: list of UTF-8 bytes; emits adjacent string literals (raw UTF-8, control bytes,
    quote, backslash and '?' (trigraphs) as 3-digit octal), never breaking inside a chunk."""
    out, line = [], ""
    for ch in chunks:
        piece = ""
        for c in ch.decode("utf-8"):
            o = ord(c)
            piece += "\\%03o" % o if (o < 0x20 or o == 0x7F or c in '"\\?') else c
        if len(line) + len(piece) > width and line:
            out.append('"' + line + '"')
            line = ""
        line += piece
    if line:
        out.append('"' + line + '"')
    return "\n".join(out)


def c_u32_array(name, values, per_line=12):
    rows = []
    for i in range(0, len(values), per_line):
        rows.append(",".join("0x%x" % v for v in values[i:i + per_line]))
    return "const uint32_t %s[%d] = {\n%s\n};\n" % (name, max(len(values), 1), ",\n".join(rows) or "0")


def ranges_of(pred, limit=0x110000):
    out, start = [], None
    for c in range(limit):
        p = pred(c)
        if p and start is None:
            start = c
        if not p and start is not None:
            out.append((start, c - 1))
            start = None
    if start is not None:
        out.append((start, limit - 1))
    return out


# ---------------------------------------------------------------- Unicode data
def cat(c):
    return unicodedata.category(chr(c))


def regex_class(c):
    k = cat(c)[0]
    if k == "L" or c == 0x345:   # U+0345: its case variants (Ι, ι) are letters
        return 1
    if cat(c) == "Nd":                  # \d in ftfy's ANSI_RE (Python re: Unicode decimal)
        return 3
    if k == "N":
        return 2
    return 0


cls = []
prev, start = 0, 0
for c in range(0x110001):
    k = regex_class(c) if c < 0x110000 else -1
    if k != prev:
        if prev > 0:
            cls += [start, c - 1, prev]
        prev, start = k, c
spaces = [c for c in range(0x110000) if chr(c).isspace()]

lower = []
for c in range(0x110000):
    l = chr(c).lower()
    if c in (0x130, 0x3A3):
        continue                       # handled in code
    if l != chr(c):
        assert len(l) == 1, hex(c)
        lower += [c, ord(l)]


def sig(s):
    return s.lower()[-1]


ignorable_set = set()
cased_set = set()
for c in range(0x110000):
    x = chr(c)
    a, b = sig("A" + x + "\u03a3"), sig("1" + x + "\u03a3")
    if a == "\u03c2" and b == "\u03c3":
        ignorable_set.add(c)
    elif b == "\u03c2":
        cased_set.add(c)
ignorable = [v for r in ranges_of(lambda c: c in ignorable_set) for v in r]
cased = [v for r in ranges_of(lambda c: c in cased_set) for v in r]

ccc = []
prev, start = 0, 0
for c in range(0x110001):
    k = unicodedata.combining(chr(c)) if c < 0x110000 else -1
    if k != prev:
        if prev > 0:
            ccc += [start, c - 1, prev]
        prev, start = k, c

SBASE, SCOUNT = 0xAC00, 11172
decomp = []   # cp, n, d0..d3
for c in range(0x110000):
    if SBASE <= c < SBASE + SCOUNT:
        continue
    d = unicodedata.normalize("NFD", chr(c))
    if d != chr(c):
        assert len(d) <= 4
        ds = [ord(x) for x in d] + [0] * (4 - len(d))
        decomp += [c, len(d)] + ds
comp = []
for c in range(0x110000):
    d = unicodedata.decomposition(chr(c))
    if not d or d.startswith("<"):
        continue
    parts = [int(x, 16) for x in d.split()]
    if len(parts) == 2 and unicodedata.normalize("NFC", chr(c)) == chr(c):
        comp.append((parts[0], parts[1], c))
comp.sort()
comp = [v for t in comp for v in t]

# ---------------------------------------------------------------- ftfy 6.1.1 tables
width = [0x3000, 0x20, 0]                              # chardata._build_width_map
for i in range(0xFF01, 0xFFF0):
    a = unicodedata.normalize("NFKC", chr(i))
    if a != chr(i):
        assert len(a) <= 2
        width += [i, ord(a[0]), ord(a[1]) if len(a) > 1 else 0]
LIGATURES = {"Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ",
             "ǅ": "Dž", "ǆ": "dž", "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj",
             "ǌ": "nj", "ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt",
             "ﬆ": "st"}                                # chardata.LIGATURES
lig = []
for k in sorted(LIGATURES, key=ord):
    v = [ord(x) for x in LIGATURES[k]]
    lig += [ord(k), len(v)] + v + [0] * (3 - len(v))
c1 = [ord(html._invalid_charrefs[b]) for b in range(0x80, 0xA0)]   # sloppy-windows-1252
control = [0x00, 0x08, 0x0B, 0x0B, 0x0E, 0x1F, 0x7F, 0x7F, 0x206A, 0x206F, 0xFEFF, 0xFEFF,
           0xFFF9, 0xFFFC]                             # chardata._build_control_char_mapping

ents = {}                                              # chardata._build_html_entities
for name, char in html.entities.html5.items():
    if name.endswith(";"):
        ents["&" + name] = char
        if name == name.lower():
            up = "&" + name.upper()
            if html.unescape(up) == up:
                ents[up] = char.upper()
ent_chunks = []
for k in sorted(ents, key=lambda s: s.encode("utf-8")):
    ent_chunks.append(k[1:].encode("utf-8") + b"\0")   # without the '&'
    ent_chunks.append(ents[k].encode("utf-8") + b"\0")
charrefs = []
for k in sorted(html._invalid_charrefs):
    charrefs += [k, ord(html._invalid_charrefs[k])]
bad_cp = [v for r in ranges_of(lambda c: c in html._invalid_codepoints) for v in r]

# ---------------------------------------------------------------- write
assert not any(" " in inv[i] for i in range(N_VOCAB))   # byte-level symbols: no ASCII space
vocab_chunks = [inv[i].encode("utf-8") + b" " for i in range(N_VOCAB)]
split = [len(a.encode("utf-8")) for a, _ in merges]
assert 0 < min(split) and max(split) < 92                 # stored as chr(35 + n)

out = []
out.append("/* tok_data.c — GENERATED by scripts/gen_tokenizer_data.py from vocab.json, merges.txt\n"
           " * (openai CLIP bpe_simple_vocab_16e6, MIT license) and Python %s's unicodedata\n"
           " * (Unicode %s), html.entities and ftfy 6.1.1's tables. Do not edit. */\n"
           % (sys.version.split()[0], unicodedata.unidata_version))
out.append('#include "tokenizer/tok_data.h"\n')
out.append("const char sdc_tokd_unicode_version[] = \"%s\";\n" % unicodedata.unidata_version)
out.append("/* token strings in id order, each followed by one space (no token holds one) */\n")
out.append("const char sdc_tokd_vocab[] =\n" + c_string_blob(vocab_chunks) + ";\n")
out.append("const size_t sdc_tokd_vocab_size = sizeof sdc_tokd_vocab;\n")
out.append("/* merge r joins token 512+r from left (its first N bytes) and right; char r = 35 + N */\n")
out.append("const char sdc_tokd_merge_left_len[] =\n" +
           c_string_blob([bytes([35 + n]) for n in split]) + ";\n")
out.append("const uint16_t sdc_tokd_byte_id[256] = {\n" +
           ",\n".join(",".join(str(v) for v in byte_id[i:i + 16]) for i in range(0, 256, 16)) +
           "\n};\n")
tables = [
    ("sdc_tokd_class", cls, "lo, hi, class (1 letter, 2 number, 3 decimal number)"),
    ("sdc_tokd_space", spaces, "str.isspace() code points"),
    ("sdc_tokd_lower", lower, "cp, str.lower(cp) (single code point mappings)"),
    ("sdc_tokd_cased", cased, "lo, hi: Cased and not Case_Ignorable"),
    ("sdc_tokd_ignorable", ignorable, "lo, hi: Case_Ignorable"),
    ("sdc_tokd_ccc", ccc, "lo, hi, canonical combining class"),
    ("sdc_tokd_decomp", decomp, "cp, n, full canonical decomposition (4 slots)"),
    ("sdc_tokd_comp", comp, "first, second, primary composite (sorted)"),
    ("sdc_tokd_width", width, "cp, a, b (b = 0: one code point): ftfy WIDTH_MAP"),
    ("sdc_tokd_lig", lig, "cp, n, up to 3 code points: ftfy LIGATURES"),
    ("sdc_tokd_c1", c1, "U+0080..U+009F as sloppy windows-1252"),
    ("sdc_tokd_control", control, "lo, hi: ftfy CONTROL_CHARS"),
    ("sdc_tokd_charref", charrefs, "html._invalid_charrefs: number, replacement"),
    ("sdc_tokd_badcp", bad_cp, "lo, hi: html._invalid_codepoints"),
]
for name, vals, what in tables:
    out.append("/* %s */\n" % what)
    out.append(c_u32_array(name, vals))
    out.append("const size_t %s_n = %d;\n" % (name, len(vals)))
out.append("/* html5 entities as ftfy 6.1.1 decodes them: name (with ';', no '&') '\\0' value '\\0',\n"
           " * sorted by name bytes */\n")
out.append("const char sdc_tokd_entities[] =\n" + c_string_blob(ent_chunks) + ";\n")
out.append("const size_t sdc_tokd_entities_n = %d;\n" % len(ents))
with open(dst, "w", encoding="utf-8") as f:
    f.write("".join(out))
print("wrote %s: %d bytes" % (dst, os.path.getsize(dst)))

#!/usr/bin/env python3
"""make_mask_variants.py — the inpainting mask of a reference as RGB, RGBA (alpha 0..255 ramp,
ignored by PIL's convert("L")) and 16-bit grey PNGs (value · 257), for tests/cli_inpaint.sh: each
must give the same mask as the 8-bit grey original. Standard library only (zlib)."""
import struct, sys, zlib

def read_grey8(path):
    b = open(path, 'rb').read()
    assert b[:8] == b'\x89PNG\r\n\x1a\n'
    pos, idat, w = 8, b'', 0
    while pos < len(b):
        n, = struct.unpack('>I', b[pos:pos + 4]); kind = b[pos + 4:pos + 8]; data = b[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', data)
            assert depth == 8 and ctype == 0 and interlace == 0, 'need 8-bit grey, not interlaced'
        elif kind == b'IDAT':
            idat += data
        pos += 12 + n
    raw, rows, prev = zlib.decompress(idat), [], bytearray(w)
    for y in range(h):
        f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0; up = prev[x]; c = prev[x - 1] if x else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + up) & 255
            elif f == 3: line[x] = (line[x] + (a + up) // 2) & 255
            elif f == 4:
                p = a + up - c; pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = line
    return w, h, rows

def write_png(path, w, h, depth, ctype, rows):
    def chunk(k, d): return struct.pack('>I', len(d)) + k + d + struct.pack('>I', zlib.crc32(k + d))
    raw = b''.join(b'\0' + r for r in rows)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 0))
                           + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))

src, stem = sys.argv[1], sys.argv[2]
w, h, rows = read_grey8(src)
write_png(stem + '_rgb.png', w, h, 8, 2, [bytes(v for g in r for v in (g, g, g)) for r in rows])
write_png(stem + '_rgba.png', w, h, 8, 6, [bytes(v for x, g in enumerate(r) for v in (g, g, g, (x * 4 + y) & 255))
                                           for y, r in enumerate(rows)])
write_png(stem + '_grey16.png', w, h, 16, 0, [b''.join(struct.pack('>H', g * 257) for g in r) for r in rows])

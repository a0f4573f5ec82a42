/* image.c — PNG writing (stb_image_write + a tEXt chunk, temp file + rename) and image reading. */
#include "pipeline/image.h"
#include "runtime/outpath.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  /* stb's static API we do not call */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#include <stb_image.h>
/* (not popped: gcc reports stb's declared-but-undefined statics at the end of the file) */

#define IMAGE_MAX_SIDE 16384   /* larger than any SD output; bounds w*h*3 in int arithmetic */

/* stb's failure reason, printable: for an unknown PNG chunk it quotes the chunk's 4 raw bytes,
 * which may be a newline or any byte (an error is one readable line). */
static const char *stb_reason(void) {
    static _Thread_local char buf[96];
    const char *r = stbi_failure_reason();
    size_t i = 0;
    for (; r && r[i] && i + 1 < sizeof buf; i++) buf[i] = (r[i] >= 0x20 && r[i] < 0x7f) ? r[i] : '?';
    buf[i] = 0;
    return i ? buf : "unknown reason";
}

static uint32_t crc32_png(const uint8_t *p, size_t n, uint32_t c) {
    c = ~c;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* The code point of the UTF-8 sequence at s (its length in *len), or -1 when it is not valid
 * UTF-8 (overlong, surrogate, past U+10FFFF, cut short). */
static long utf8_cp(const unsigned char *s, int *len) {
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!n) return -1;
    long cp = n == 1 ? (long)c : (long)(c & (0x7f >> n));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const long min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *len = n;
    return cp;
}

/* The text chunk as PIL's PngInfo.add_text writes it (what AUTOMATIC1111 uses): tEXt holding the
 * Latin-1 bytes when every character of the UTF-8 value is in Latin-1, else iTXt (uncompressed,
 * no language, no translated key) holding the UTF-8. A value that is not UTF-8 at all goes into
 * tEXt as it is. *chunk is malloc'd: the whole chunk (length, type, data, CRC); 0 or -1. */
static int text_chunk(const char *key, const char *val, uint8_t **chunk, size_t *clen) {
    size_t kl = strlen(key), vl = strlen(val);
    const unsigned char *v = (const unsigned char *)val;
    int latin1 = 1, utf8 = 1;
    for (size_t i = 0; i < vl;) {
        int n = 1;
        long cp = utf8_cp(v + i, &n);
        if (cp < 0) { utf8 = 0; break; }
        if (cp > 0xff) latin1 = 0;
        i += (size_t)n;
    }
    int itxt = utf8 && !latin1;
    size_t dl = kl + 1 + (itxt ? 4 : 0) + vl;   /* (Latin-1 is never longer than the UTF-8) */
    uint8_t *c = malloc(12 + dl);
    if (!c) return -1;
    memcpy(c + 4, itxt ? "iTXt" : "tEXt", 4);
    uint8_t *d = c + 8;
    memcpy(d, key, kl);
    d += kl;
    *d++ = 0;
    if (itxt) {   /* compression flag 0, method 0, language "", translated keyword "" */
        memset(d, 0, 4);
        memcpy(d + 4, val, vl);
        d += 4 + vl;
    } else if (utf8) {   /* UTF-8 → Latin-1 bytes */
        for (size_t i = 0; i < vl;) {
            int n = 1;
            *d++ = (uint8_t)utf8_cp(v + i, &n);
            i += (size_t)n;
        }
    } else {
        memcpy(d, val, vl);
        d += vl;
    }
    dl = (size_t)(d - (c + 8));
    put_be32(c, (uint32_t)dl);
    put_be32(c + 8 + dl, crc32_png(c + 4, 4 + dl, 0));
    *chunk = c;
    *clen = 12 + dl;
    return 0;
}

/* Writes the PNG from stb with the text chunk inserted after IHDR (signature 8 + IHDR 25 bytes). */
static int write_with_text(FILE *f, const uint8_t *png, int len, const char *key, const char *val) {
    if (!key || len < 33) return fwrite(png, 1, (size_t)len, f) == (size_t)len ? 0 : -1;
    uint8_t *chunk;
    size_t cl;
    if (text_chunk(key, val, &chunk, &cl)) return -1;
    int ok = fwrite(png, 1, 33, f) == 33 && fwrite(chunk, 1, cl, f) == cl &&
             fwrite(png + 33, 1, (size_t)len - 33, f) == (size_t)len - 33;
    free(chunk);
    return ok ? 0 : -1;
}

int sdc_write_png(const char *path, const uint8_t *rgb, int w, int h, const char *text_key,
                  const char *text_val, sdc_err *e) {
    if (w <= 0 || h <= 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "%s: bad image size %dx%d", path, w, h);
    if (sdc_output_check(path, 1, e)) return -1;   /* never a device, FIFO, folder or link */
    int len = 0;
    unsigned char *png = stbi_write_png_to_mem(rgb, w * 3, w, h, 3, &len);
    if (!png) return sdc_errf(e, "%s: PNG encoding failed (out of memory)", path);
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp) { STBIW_FREE(png); return sdc_errf(e, "%s: out of memory", path); }
    snprintf(tmp, pl + 32, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wbx");   /* exclusive: never through an existing file or link */
    if (!f) {
        int err = errno;
        STBIW_FREE(png);
        free(tmp);
        return sdc_errf(e, "%s: cannot write: %s", path, strerror(err));
    }
    int bad = write_with_text(f, png, len, text_key, text_val ? text_val : "");
    bad |= fflush(f) != 0;
    bad |= fclose(f) != 0;
    STBIW_FREE(png);
    sdc_err ce;
    if (!bad && sdc_output_check(path, 1, &ce)) {   /* it may have changed meanwhile */
        unlink(tmp);
        free(tmp);
        if (e) *e = ce;
        return -1;
    }
    if (bad || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        free(tmp);
        return sdc_errf(e, "%s: cannot write: %s", path, strerror(err));
    }
    free(tmp);
    return 0;
}

/* stb_image (Debian 12's copy) writes past a 257-entry table when a JPEG's Huffman table (DHT)
 * declares more than 256 codes, which no valid JPEG does (fuzz_genreq found it through a base64
 * init image). So a JPEG is walked marker by marker first, strictly (SOI, segments, entropy-coded
 * data up to the next marker), and refused when a DHT is malformed or the structure is not the
 * plain one stb would follow: 1 = safe to hand to stb (or not a JPEG), 0 = refuse. */
static int jpeg_safe(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n && p[i] == 0xFF) i++;               /* stb takes fill bytes before SOI too */
    if (i == 0 || i >= n || p[i] != 0xD8) return 1;
    i++;
    while (i < n) {
        if (p[i] != 0xFF) return 0;
        while (i < n && p[i] == 0xFF) i++;           /* fill bytes */
        if (i >= n) return 1;
        uint8_t m = p[i++];
        if (m == 0xD9) return 1;                      /* EOI */
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;
        if (i + 2 > n) return 0;
        size_t len = (size_t)p[i] << 8 | p[i + 1];
        if (len < 2 || i + len > n) return 0;
        if (m == 0xC4) {                               /* DHT: tables of 1 + 16 + sum(counts) bytes */
            size_t q = i + 2, end = i + len;
            while (q < end) {
                if ((p[q] >> 4) > 1 || (p[q] & 15) > 3 || q + 17 > end) return 0;
                size_t sum = 0;
                for (int k = 1; k <= 16; k++) sum += p[q + k];
                if (sum > 256) return 0;
                q += 17 + sum;
            }
            if (q != end) return 0;
        }
        i += len;
        if (m == 0xDA)                                 /* SOS: skip the entropy-coded data */
            while (i < n && !(p[i] == 0xFF && i + 1 < n && p[i + 1] != 0 && !(p[i + 1] >= 0xD0 && p[i + 1] <= 0xD7))) i++;
    }
    return 1;
}

/* jpeg_safe for a file: reads it only when it starts as a JPEG. */
static int jpeg_file_safe(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 1;   /* the decoder reports it */
    uint8_t sig[2];
    int ok = 1;
    if (fread(sig, 1, 2, f) == 2 && sig[0] == 0xFF && (sig[1] == 0xD8 || sig[1] == 0xFF) && fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        uint8_t *b = len > 0 ? malloc((size_t)len) : NULL;
        ok = b && fseek(f, 0, SEEK_SET) == 0 && fread(b, 1, (size_t)len, f) == (size_t)len && jpeg_safe(b, (size_t)len);
        free(b);
    }
    fclose(f);
    return ok;
}

int sdc_read_image(const char *path, uint8_t **rgb, int *w, int *h, sdc_err *e) {
    int n = 0;
    struct stat st;   /* a FIFO or device would block the reads below (and is read twice) */
    if (stat(path, &st) != 0) return sdc_errf(e, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return sdc_errf(e, "%s: not a regular file: give an image file", path);
    if (!jpeg_file_safe(path)) return sdc_errf(e, "%s: a malformed JPEG (bad Huffman table or markers)", path);
    if (!stbi_info(path, w, h, &n)) return sdc_errf(e, "%s: not a readable image (%s)", path, stb_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "%s: image size %dx%d out of range", path, *w, *h);
    *rgb = stbi_load(path, w, h, &n, 3);
    if (!*rgb) return sdc_errf(e, "%s: cannot decode image (%s)", path, stb_reason());
    return 0;
}

/* The value of a tEXt (Latin-1) or iTXt (UTF-8, possibly zlib-compressed) chunk's data d[0..n)
 * whose keyword is key, as malloc'd UTF-8; NULL when the keyword differs or the chunk is bad. */
static char *chunk_text(const uint8_t *d, size_t n, int itxt, const char *key) {
    size_t kl = strnlen((const char *)d, n);
    if (kl >= n || strcmp((const char *)d, key)) return NULL;
    const uint8_t *p = d + kl + 1, *end = d + n;
    if (!itxt) {   /* Latin-1 → UTF-8 */
        char *o = malloc(2 * (size_t)(end - p) + 1), *q = o;
        if (!o) return NULL;
        for (; p < end; p++) {
            if (*p < 0x80) *q++ = (char)*p;
            else { *q++ = (char)(0xc0 | *p >> 6); *q++ = (char)(0x80 | (*p & 0x3f)); }
        }
        *q = 0;
        return o;
    }
    if (end - p < 2) return NULL;
    int compressed = p[0], method = p[1];
    p += 2;
    for (int skip = 0; skip < 2; skip++) {   /* language tag, translated keyword */
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (!z) return NULL;
        p = z + 1;
    }
    if (!compressed) {
        char *o = malloc((size_t)(end - p) + 1);
        if (o) { memcpy(o, p, (size_t)(end - p)); o[end - p] = 0; }
        return o;
    }
    if (method != 0 || end - p > INT_MAX) return NULL;
    int ol = 0;
    char *z = stbi_zlib_decode_malloc((const char *)p, (int)(end - p), &ol);
    char *o = z ? malloc((size_t)ol + 1) : NULL;
    if (o) { memcpy(o, z, (size_t)ol); o[ol] = 0; }
    STBI_FREE(z);
    return o;
}

char *sdc_png_read_text(const char *path, const char *key) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t hdr[8], len4[8];
    char *out = NULL;
    if (fread(hdr, 1, 8, f) != 8 || memcmp(hdr, "\x89PNG\r\n\x1a\n", 8)) { fclose(f); return NULL; }
    while (!out && fread(len4, 1, 8, f) == 8) {
        uint32_t n = (uint32_t)len4[0] << 24 | (uint32_t)len4[1] << 16 | (uint32_t)len4[2] << 8 | len4[3];
        if (n > (64u << 20)) break;
        int text = !memcmp(len4 + 4, "tEXt", 4), itxt = !memcmp(len4 + 4, "iTXt", 4);
        if (text || itxt) {
            uint8_t *d = malloc((size_t)n + 1);
            if (!d || fread(d, 1, n, f) != n) { free(d); break; }
            d[n] = 0;
            out = chunk_text(d, n, itxt, key);
            free(d);
            if (fseek(f, 4, SEEK_CUR)) break;
        } else if (!memcmp(len4 + 4, "IEND", 4) || fseek(f, (long)n + 4, SEEK_CUR)) {
            break;
        }
    }
    fclose(f);
    return out;
}

int sdc_png_encode(const uint8_t *rgb, int w, int h, const char *text_key, const char *text_val,
                   uint8_t **out, size_t *out_len, sdc_err *e) {
    *out = NULL;
    *out_len = 0;
    if (w <= 0 || h <= 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "png: bad image size %dx%d", w, h);
    int len = 0;
    unsigned char *png = stbi_write_png_to_mem(rgb, w * 3, w, h, 3, &len);
    if (!png) return sdc_errf(e, "png: encoding failed (out of memory)");
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);   /* the same chunk writer as the file path */
    int bad = !f || write_with_text(f, png, len, text_key, text_val ? text_val : "");
    if (f) bad |= fclose(f) != 0;
    STBIW_FREE(png);
    if (bad) { free(buf); return sdc_errf(e, "png: encoding failed (out of memory)"); }
    *out = (uint8_t *)buf;
    *out_len = n;
    return 0;
}

int sdc_decode_image(const uint8_t *buf, size_t n, uint8_t **rgb, int *w, int *h, sdc_err *e) {
    int c = 0;
    *rgb = NULL;
    if (n == 0 || n > INT32_MAX) return sdc_errf(e, "image: %zu bytes: not a readable image", n);
    if (!jpeg_safe(buf, n)) return sdc_errf(e, "image: a malformed JPEG (bad Huffman table or markers)");
    if (!stbi_info_from_memory(buf, (int)n, w, h, &c))
        return sdc_errf(e, "image: not a readable image (%s)", stb_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "image: size %dx%d out of range", *w, *h);
    *rgb = stbi_load_from_memory(buf, (int)n, w, h, &c, 3);
    if (!*rgb) return sdc_errf(e, "image: cannot decode (%s)", stb_reason());
    return 0;
}

/* One grey byte per pixel from n channels, as PIL's convert("L"): grey as is, colour weighted. */
static uint8_t *mask_grey(const uint8_t *px, int n, size_t hw) {
    uint8_t *g = malloc(hw ? hw : 1);
    for (size_t i = 0; g && i < hw; i++) {
        const uint8_t *p = px + i * (size_t)n;
        g[i] = n < 3 ? p[0] : (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16);
    }
    return g;
}

int sdc_read_mask(const char *path, uint8_t **grey, int *w, int *h, sdc_err *e) {
    int n = 0;
    struct stat st;
    *grey = NULL;
    if (stat(path, &st) != 0) return sdc_errf(e, "%s: cannot open mask: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return sdc_errf(e, "%s: mask is not a regular file: give an image file", path);
    if (!jpeg_file_safe(path)) return sdc_errf(e, "%s: a malformed JPEG mask (bad Huffman table or markers)", path);
    if (!stbi_info(path, w, h, &n)) return sdc_errf(e, "%s: not a readable mask image (%s)", path, stb_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "%s: mask size %dx%d out of range", path, *w, *h);
    uint8_t *px = stbi_load(path, w, h, &n, 0);   /* its own channels; 16-bit → high byte */
    if (!px) return sdc_errf(e, "%s: cannot decode mask (%s)", path, stb_reason());
    *grey = mask_grey(px, n, (size_t)*w * *h);
    stbi_image_free(px);
    if (!*grey) return sdc_errf(e, "%s: out of memory", path);
    return 0;
}

int sdc_decode_mask(const uint8_t *buf, size_t len, uint8_t **grey, int *w, int *h, sdc_err *e) {
    int n = 0;
    *grey = NULL;
    if (len == 0 || len > INT32_MAX) return sdc_errf(e, "mask: %zu bytes: not a readable image", len);
    if (!jpeg_safe(buf, len)) return sdc_errf(e, "mask: a malformed JPEG (bad Huffman table or markers)");
    if (!stbi_info_from_memory(buf, (int)len, w, h, &n))
        return sdc_errf(e, "mask: not a readable image (%s)", stb_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "mask: size %dx%d out of range", *w, *h);
    uint8_t *px = stbi_load_from_memory(buf, (int)len, w, h, &n, 0);
    if (!px) return sdc_errf(e, "mask: cannot decode (%s)", stb_reason());
    *grey = mask_grey(px, n, (size_t)*w * *h);
    stbi_image_free(px);
    if (!*grey) return sdc_errf(e, "mask: out of memory");
    return 0;
}

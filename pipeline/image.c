/* image.c — PNG writing (stb_image_write + a tEXt chunk, temp file + rename) and image reading. */
#include "pipeline/image.h"
#include "runtime/outpath.h"

#include <errno.h>
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

/* Writes the PNG from stb with a tEXt chunk inserted after IHDR (signature 8 + IHDR 25 bytes). */
static int write_with_text(FILE *f, const uint8_t *png, int len, const char *key, const char *val) {
    if (!key || len < 33) return fwrite(png, 1, (size_t)len, f) == (size_t)len ? 0 : -1;
    size_t kl = strlen(key), vl = strlen(val), dl = kl + 1 + vl;
    uint8_t *chunk = malloc(12 + dl);
    if (!chunk) return -1;
    put_be32(chunk, (uint32_t)dl);
    memcpy(chunk + 4, "tEXt", 4);
    memcpy(chunk + 8, key, kl);
    chunk[8 + kl] = 0;
    memcpy(chunk + 9 + kl, val, vl);
    put_be32(chunk + 8 + dl, crc32_png(chunk + 4, 4 + dl, 0));
    int ok = fwrite(png, 1, 33, f) == 33 && fwrite(chunk, 1, 12 + dl, f) == 12 + dl &&
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

int sdc_read_image(const char *path, uint8_t **rgb, int *w, int *h, sdc_err *e) {
    int n = 0;
    struct stat st;   /* a FIFO or device would block the reads below (and is read twice) */
    if (stat(path, &st) != 0) return sdc_errf(e, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return sdc_errf(e, "%s: not a regular file: give an image file", path);
    if (!stbi_info(path, w, h, &n)) return sdc_errf(e, "%s: not a readable image (%s)", path, stbi_failure_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "%s: image size %dx%d out of range", path, *w, *h);
    *rgb = stbi_load(path, w, h, &n, 3);
    if (!*rgb) return sdc_errf(e, "%s: cannot decode image (%s)", path, stbi_failure_reason());
    return 0;
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
        if (!memcmp(len4 + 4, "tEXt", 4)) {
            char *d = malloc((size_t)n + 1);
            if (!d || fread(d, 1, n, f) != n) { free(d); break; }
            d[n] = 0;
            size_t kl = strnlen(d, n);
            if (kl < n && !strcmp(d, key)) {
                out = strdup(d + kl + 1);
            }
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
    if (!stbi_info_from_memory(buf, (int)n, w, h, &c))
        return sdc_errf(e, "image: not a readable image (%s)", stbi_failure_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "image: size %dx%d out of range", *w, *h);
    *rgb = stbi_load_from_memory(buf, (int)n, w, h, &c, 3);
    if (!*rgb) return sdc_errf(e, "image: cannot decode (%s)", stbi_failure_reason());
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
    if (!stbi_info(path, w, h, &n)) return sdc_errf(e, "%s: not a readable mask image (%s)", path, stbi_failure_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "%s: mask size %dx%d out of range", path, *w, *h);
    uint8_t *px = stbi_load(path, w, h, &n, 0);   /* its own channels; 16-bit → high byte */
    if (!px) return sdc_errf(e, "%s: cannot decode mask (%s)", path, stbi_failure_reason());
    *grey = mask_grey(px, n, (size_t)*w * *h);
    stbi_image_free(px);
    if (!*grey) return sdc_errf(e, "%s: out of memory", path);
    return 0;
}

int sdc_decode_mask(const uint8_t *buf, size_t len, uint8_t **grey, int *w, int *h, sdc_err *e) {
    int n = 0;
    *grey = NULL;
    if (len == 0 || len > INT32_MAX) return sdc_errf(e, "mask: %zu bytes: not a readable image", len);
    if (!stbi_info_from_memory(buf, (int)len, w, h, &n))
        return sdc_errf(e, "mask: not a readable image (%s)", stbi_failure_reason());
    if (*w <= 0 || *h <= 0 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE)
        return sdc_errf(e, "mask: size %dx%d out of range", *w, *h);
    uint8_t *px = stbi_load_from_memory(buf, (int)len, w, h, &n, 0);
    if (!px) return sdc_errf(e, "mask: cannot decode (%s)", stbi_failure_reason());
    *grey = mask_grey(px, n, (size_t)*w * *h);
    stbi_image_free(px);
    if (!*grey) return sdc_errf(e, "mask: out of memory");
    return 0;
}

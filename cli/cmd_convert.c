/* cmd_convert.c — `sdc convert IN OUT.safetensors [--dtype keep|f16|f32|bf16] [--force]`.
 *
 * Reads any checkpoint the store opens (safetensors, zip or legacy ckpt), and writes a
 * safetensors file with the same names in the same order and the same metadata (a file
 * without metadata gets {"format":"pt"}, as safetensors.torch writes it). Float tensors take
 * the requested dtype (round to nearest even); integer and bool tensors keep theirs. Writes a
 * temporary file in the destination folder and renames it into place, so OUT is never left
 * half-written; an existing OUT is only replaced with --force. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "runtime/outpath.h"
#include "runtime/store.h"

/* Elements converted per chunk: bounds the buffers (4 MB of f32) whatever the tensor size. */
#define CONVERT_CHUNK (1u << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: sdc convert IN OUT.safetensors [--dtype keep|f16|f32|bf16] [--force]\n"
               "  rewrites IN (.safetensors or .ckpt) as safetensors: same names, order and metadata.\n"
               "  --dtype   float tensors become this dtype (default keep); integers keep theirs\n"
               "  --force   replace OUT if it exists\n"
               "  --strict / --allow-unsafe-pickle   as for loading (see sdc generate --help)\n");
}

/* ---------------------------------------------------------------------------------------------
 * f32 → f16 / bf16, round to nearest even (what torch's .half() / .bfloat16() do) */

static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00 | ((ax >> 13) & 0x3ff) : 0x7c00));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);           /* ≥ 65520 rounds to inf */
    if (ax < 0x38800000u) {                                              /* below 2^-14: subnormal */
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.0f)); /* units of 2^-24, RNE */
    }
    ax += 0xc8000000u + 0xfffu + ((ax >> 13) & 1);                      /* rebias, round half even */
    return (uint16_t)(sign | (ax >> 13));
}

static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);   /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---------------------------------------------------------------------------------------------
 * the header */

typedef struct sbuf { char *p; size_t n, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string as serde_json writes it: quotes, backslash and control bytes escaped. */
static void sb_json(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        switch (c) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        default:
            if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); sb_str(b, esc); }
            else sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static sdc_dtype out_dtype(const sdc_tensor *t, int target) {
    return (target >= 0 && sdc_dtype_is_float(t->dtype)) ? (sdc_dtype)target : t->dtype;
}

/* ---------------------------------------------------------------------------------------------
 * writing */

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes one tensor's data in the dtype od, converting through f32 chunk by chunk. */
static int write_tensor(int fd, const sdc_tensor *t, sdc_dtype od, float *fbuf, uint16_t *hbuf, sdc_err *e) {
    if (od == t->dtype) return write_all(fd, t->data, t->nbytes) ? sdc_errf(e, "write failed: %s", strerror(errno)) : 0;
    size_t es = sdc_dtype_size(t->dtype);
    for (int64_t at = 0; at < t->numel; at += CONVERT_CHUNK) {
        int64_t n = t->numel - at < CONVERT_CHUNK ? t->numel - at : CONVERT_CHUNK;
        sdc_tensor part = *t;          /* a view of the chunk, converted by the store */
        part.ndim = 1;
        part.shape[0] = part.numel = n;
        part.nbytes = (size_t)n * es;
        part.data = (const char *)t->data + (size_t)at * es;
        if (sdc_tensor_to_f32(&part, fbuf, e)) return -1;
        const void *out = fbuf;
        size_t bytes = (size_t)n * 4;
        if (od == SDC_F16) { for (int64_t i = 0; i < n; i++) hbuf[i] = f32_to_f16(fbuf[i]); out = hbuf; bytes = (size_t)n * 2; }
        else if (od == SDC_BF16) { for (int64_t i = 0; i < n; i++) hbuf[i] = f32_to_bf16(fbuf[i]); out = hbuf; bytes = (size_t)n * 2; }
        else if (od != SDC_F32) return sdc_errf(e, "cannot write dtype %s", sdc_dtype_name(od));
        if (write_all(fd, out, bytes)) return sdc_errf(e, "write failed: %s", strerror(errno));
    }
    return 0;
}

/* Builds the header (padded with spaces to a multiple of 8 so the data is aligned). */
static int build_header(const sdc_store *s, int target, sbuf *h, sdc_err *e) {
    sb_str(h, "{");
    int first = 1;
    sb_str(h, "\"__metadata__\":{");
    if (!sdc_store_meta_count(s)) sb_str(h, "\"format\":\"pt\"");
    for (size_t i = 0; i < sdc_store_meta_count(s); i++) {
        const char *k, *v;
        sdc_store_meta_at(s, i, &k, &v);
        if (i) sb_str(h, ",");
        sb_json(h, k);
        sb_str(h, ":");
        sb_json(h, v);
    }
    sb_str(h, "}");
    first = 0;
    uint64_t off = 0;
    for (size_t i = 0; i < sdc_store_count(s); i++) {
        const sdc_tensor *t = sdc_store_at(s, i);
        sdc_dtype od = out_dtype(t, target);
        uint64_t nb = (uint64_t)t->numel * sdc_dtype_size(od);   /* ≤ the input's bytes × 4: fits */
        if (!first) sb_str(h, ",");
        first = 0;
        sb_json(h, t->name);
        char tmp[96];
        snprintf(tmp, sizeof tmp, ":{\"dtype\":\"%s\",\"shape\":[", sdc_dtype_name(od));
        sb_str(h, tmp);
        for (int d = 0; d < t->ndim; d++) {
            snprintf(tmp, sizeof tmp, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            sb_str(h, tmp);
        }
        snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + nb));
        sb_str(h, tmp);
        off += nb;
    }
    sb_str(h, "}");
    while (!h->oom && (8 + h->n) % 8) sb_str(h, " ");
    return h->oom ? sdc_errf(e, "out of memory building the header") : 0;
}

static int convert(const sdc_store *s, const char *out, int target, sdc_err *e) {
    sbuf h = {0};
    if (build_header(s, target, &h, e)) { free(h.p); return sdc_err_prefix(e, "%s", out); }
    char *dcopy = strdup(out), *tmpl = NULL;
    const char *dir = dcopy ? dirname(dcopy) : ".";
    size_t tl = strlen(dir) + 32;
    tmpl = malloc(tl);
    float *fbuf = malloc(CONVERT_CHUNK * sizeof *fbuf);
    uint16_t *hbuf = malloc(CONVERT_CHUNK * sizeof *hbuf);
    int fd = -1, rc = -1, created = 0;
    if (!dcopy || !tmpl || !fbuf || !hbuf) { sdc_errf(e, "%s: out of memory", out); goto done; }
    snprintf(tmpl, tl, "%s/.sdc-convert-XXXXXX", dir);
    fd = mkstemp(tmpl);
    if (fd < 0) { sdc_errf(e, "%s: cannot create a temporary file in %s: %s", out, dir, strerror(errno)); goto done; }
    created = 1;
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    if (write_all(fd, len8, 8) || write_all(fd, h.p, h.n)) {
        sdc_errf(e, "%s: write failed: %s", tmpl, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < sdc_store_count(s); i++) {
        const sdc_tensor *t = sdc_store_at(s, i);
        if (write_tensor(fd, t, out_dtype(t, target), fbuf, hbuf, e)) {
            sdc_err_prefix(e, "%s: tensor '%s'", out, t->name);
            goto done;
        }
    }
    if (fsync(fd) != 0) { sdc_errf(e, "%s: fsync failed: %s", tmpl, strerror(errno)); goto done; }
    if (close(fd) != 0) { fd = -1; sdc_errf(e, "%s: close failed: %s", tmpl, strerror(errno)); goto done; }
    fd = -1;
    if (sdc_output_check(out, 1, e)) goto done;   /* it may have changed meanwhile */
    if (rename(tmpl, out) != 0) { sdc_errf(e, "%s: cannot rename the temporary file into place: %s", out, strerror(errno)); goto done; }
    rc = 0;
done:
    if (fd >= 0) close(fd);
    if (rc && created) unlink(tmpl);
    free(h.p);
    free(dcopy);
    free(tmpl);
    free(fbuf);
    free(hbuf);
    return rc;
}

int sdc_cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int target = -1, force = 0;
    sdc_load_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--strict")) opts.strict = 1;
        else if (!strcmp(a, "--allow-unsafe-pickle")) opts.allow_unsafe_pickle = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--dtype") || !strncmp(a, "--dtype=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) { fprintf(stderr, "sdc: convert: --dtype needs a value (keep|f16|f32|bf16)\n"); return 2; }
            if (!strcmp(v, "keep")) target = -1;
            else if (!strcmp(v, "f16") || !strcmp(v, "fp16")) target = SDC_F16;
            else if (!strcmp(v, "f32") || !strcmp(v, "fp32")) target = SDC_F32;
            else if (!strcmp(v, "bf16")) target = SDC_BF16;
            else { fprintf(stderr, "sdc: convert: unknown --dtype '%s' (keep|f16|f32|bf16)\n", v); return 2; }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sdc: convert: unknown option '%s' (try sdc convert --help)\n", a);
            return 2;
        } else if (!in) in = a;
        else if (!out) out = a;
        else { fprintf(stderr, "sdc: convert: too many arguments ('%s')\n", a); return 2; }
    }
    if (!in || !out) {
        fprintf(stderr, "sdc: convert: needs IN and OUT.safetensors (try sdc convert --help)\n");
        return 2;
    }
    sdc_err e = {{0}};
    /* only a regular file is ever replaced (--force), never a device, FIFO, folder or link */
    if (sdc_output_check(out, force, &e)) {
        fprintf(stderr, "sdc: %s%s\n", e.msg, strstr(e.msg, "already exists") ? ": use --force to replace it" : "");
        return 2;
    }
    sdc_store *s = sdc_store_new();
    if (!s) { fprintf(stderr, "sdc: %s: out of memory\n", in); return 2; }
    if (sdc_store_open(s, in, &opts, &e) || convert(s, out, target, &e)) {
        fprintf(stderr, "sdc: %s\n", e.msg);
        sdc_store_close(s);
        return 2;
    }
    fprintf(stderr, "sdc: wrote %s: %zu tensors\n", out, sdc_store_count(s));
    sdc_store_close(s);
    return 0;
}

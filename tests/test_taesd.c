/* test_taesd.c — TAESD against the reference (diffusers 0.25.1 AutoencoderTiny on taesd-random):
 * decoder outputs for both latent sizes and the decoder's intermediate layers, encoder latents
 * for both image sizes and its intermediates, the decoder on AutoencoderTiny.forward's
 * quantised latents; the same bits from the standalone layout (taesd_decoder / taesd_encoder
 * files, written here from the diffusers file with the keys renamed); a batch of 2; clear errors
 * for a file without TAESD weights, a missing tensor and bad sizes.
 * Tolerance (fixtures README): atol 1e-4, or 2e-5 of max|ref|. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "models/taesd.h"
#include "runtime/store.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

#define ATOL 1e-4
#define RTOL_OF_MAX 2e-5

static const char *MODEL = "tests/data/taesd-random.safetensors";
static const char *REF = "tests/data/refs/taesd.safetensors";

static int within(double err, double refmax) { return err <= ATOL || err <= RTOL_OF_MAX * refmax; }

/* Compares each tapped layer "decoder.layers.N" with "<prefix>.layers.N" of the reference. */
typedef struct tapcheck {
    const sdc_store *ref;
    const char *prefix;
    int n_checked;
} tapcheck;

static void on_tap(void *user, const char *name, const float *x, int C, int H, int W) {
    tapcheck *t = user;
    const char *dot = strchr(name, '.');       /* "decoder.layers.5" -> "layers.5" */
    char full[160];
    snprintf(full, sizeof full, "%s.%s", t->prefix, dot ? dot + 1 : name);
    size_t n = 0;
    float *r = tu_tensor_f32(t->ref, full, &n);
    if (!r) return;                             /* not every layer has a reference */
    CHECK(n == (size_t)C * H * W, "%s: %zu elements, tapped %dx%dx%d", full, n, C, H, W);
    if (n == (size_t)C * H * W) {
        double rm, err = tu_max_abs_diff(x, r, n, &rm);
        printf("  %-32s max abs err %.3g (max|ref| %.3g)\n", full, err, rm);
        CHECK(within(err, rm), "%s err %g", full, err);
        t->n_checked++;
    }
    free(r);
}

/* Decodes `in` of the reference and compares with `want`; returns the output (malloc'd). */
static float *check_decode(sdc_taesd *t, const sdc_store *ref, sdc_arena *a, const char *in, const char *want,
                           const char *tap_prefix) {
    const sdc_tensor *zt = sdc_store_get(ref, in);
    size_t nz = 0, no = 0;
    float *z = tu_tensor_f32(ref, in, &nz), *ref_out = tu_tensor_f32(ref, want, &no);
    CHECK(zt && z && ref_out && zt->ndim == 4, "reference %s / %s", in, want);
    if (!zt || !z || !ref_out) { free(z); free(ref_out); return NULL; }
    const int h = (int)zt->shape[2], w = (int)zt->shape[3], f = sdc_taesd_downscale(t);
    CHECK(no == (size_t)3 * h * f * w * f, "%s size", want);
    float *img = malloc(no * sizeof *img);
    tapcheck tc = {ref, tap_prefix, 0};
    if (tap_prefix) sdc_taesd_set_tap(t, on_tap, &tc);
    sdc_err e = {{0}};
    int rc = sdc_taesd_decode(t, a, img, z, 1, h, w, &e);
    sdc_taesd_set_tap(t, NULL, NULL);
    CHECK(rc == 0, "decode %s: %s", in, e.msg);
    double rm, err = tu_max_abs_diff(img, ref_out, no, &rm);
    printf("decode %-28s max abs err %.3g (max|ref| %.3g)\n", in, err, rm);
    CHECK(within(err, rm), "decode %s err %g", in, err);
    if (tap_prefix) CHECK(tc.n_checked == 8, "decoder taps checked: %d of 8 (layers_input + 7)", tc.n_checked);
    free(z);
    free(ref_out);
    return img;
}

static float *check_encode(sdc_taesd *t, const sdc_store *ref, sdc_arena *a, const char *c, const char *tap_prefix) {
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "enc_image_%s", c);
    snprintf(n2, sizeof n2, "enc_latents_%s", c);
    const sdc_tensor *it = sdc_store_get(ref, n1);
    size_t ni = 0, nl = 0;
    float *img = tu_tensor_f32(ref, n1, &ni), *want = tu_tensor_f32(ref, n2, &nl);
    CHECK(it && img && want && it->ndim == 4, "reference %s / %s", n1, n2);
    if (!it || !img || !want) { free(img); free(want); return NULL; }
    const int H = (int)it->shape[2], W = (int)it->shape[3], f = sdc_taesd_downscale(t);
    CHECK(nl == (size_t)4 * (H / f) * (W / f), "%s size", n2);
    float *lat = malloc(nl * sizeof *lat);
    tapcheck tc = {ref, tap_prefix, 0};
    if (tap_prefix) sdc_taesd_set_tap(t, on_tap, &tc);
    sdc_err e = {{0}};
    int rc = sdc_taesd_encode(t, a, lat, img, 1, H, W, &e);
    sdc_taesd_set_tap(t, NULL, NULL);
    CHECK(rc == 0, "encode %s: %s", c, e.msg);
    double rm, err = tu_max_abs_diff(lat, want, nl, &rm);
    printf("encode %-28s max abs err %.3g (max|ref| %.3g)\n", c, err, rm);
    CHECK(within(err, rm), "encode %s err %g", c, err);
    if (tap_prefix) CHECK(tc.n_checked == 4, "encoder taps checked: %d of 4", tc.n_checked);
    free(img);
    free(want);
    return lat;
}

/* Writes the tensors of st whose names start with `from` to a safetensors file at path, renamed
 * to `to` + (index + shift) + rest: the standalone layout. Returns 0 or -1. */
static int write_standalone(const sdc_store *st, const char *from, int shift, const char *path) {
    size_t hcap = 1 << 16, hl = 0, off = 0, fl = strlen(from);
    char *h = malloc(hcap);
    hl += (size_t)snprintf(h + hl, hcap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < sdc_store_count(st); i++) {
        const sdc_tensor *t = sdc_store_at(st, i);
        if (strncmp(t->name, from, fl)) continue;
        char *rest;
        long idx = strtol(t->name + fl, &rest, 10);
        hl += (size_t)snprintf(h + hl, hcap - hl, ",\"%ld%s\":{\"dtype\":\"%s\",\"shape\":[", idx + shift, rest,
                               sdc_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) hl += (size_t)snprintf(h + hl, hcap - hl, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        hl += (size_t)snprintf(h + hl, hcap - hl, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    hl += (size_t)snprintf(h + hl, hcap - hl, "}");
    FILE *f = fopen(path, "wb");
    if (!f || hl >= hcap) { free(h); if (f) fclose(f); return -1; }
    uint64_t n = hl;
    fwrite(&n, 8, 1, f);
    fwrite(h, 1, hl, f);
    for (size_t i = 0; i < sdc_store_count(st); i++) {
        const sdc_tensor *t = sdc_store_at(st, i);
        if (!strncmp(t->name, from, fl)) fwrite(t->data, 1, t->nbytes, f);
    }
    free(h);
    return fclose(f) ? -1 : 0;
}

static sdc_taesd *load_file(const char *path, sdc_store **st, sdc_err *e) {
    *st = sdc_store_new();
    if (sdc_store_open(*st, path, NULL, e)) return NULL;
    return sdc_taesd_load(*st, e);
}

int main(void) {
    sdc_kernels_set_threads(2);
    sdc_err e = {{0}};
    sdc_store *ref = sdc_store_new(), *st = NULL;
    CHECK(sdc_store_open(ref, REF, NULL, &e) == 0, "%s", e.msg);
    sdc_taesd *t = load_file(MODEL, &st, &e);
    CHECK(t, "load: %s", e.msg);
    if (!t) return 1;
    CHECK(sdc_taesd_has_decoder(t) && sdc_taesd_has_encoder(t), "both halves");
    CHECK(sdc_taesd_latent_channels(t) == 4 && sdc_taesd_downscale(t) == 8, "E %d f %d",
          sdc_taesd_latent_channels(t), sdc_taesd_downscale(t));
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);

    float *d8 = check_decode(t, ref, &a, "dec_latent_x8x8", "dec_out_x8x8", "dbg_dec_x8x8");
    float *d12 = check_decode(t, ref, &a, "dec_latent_x12x6", "dec_out_x12x6", NULL);
    free(check_decode(t, ref, &a, "fwd_decoder_input_x64x64", "fwd_out_x64x64", NULL));
    float *l64 = check_encode(t, ref, &a, "x64x64", "dbg_enc_x64x64");
    float *l48 = check_encode(t, ref, &a, "x48x80", NULL);

    /* the 8-bit latents AutoencoderTiny.forward stores (q = round(255·clamp(z/6 + 0.5, 0, 1))) come
     * from our latents: the encoder is close enough that no q moves */
    size_t nq = 0;
    float *q = tu_tensor_f32(ref, "fwd_latents_q255_x64x64", &nq);
    if (q && l64) {
        int moved = 0;
        for (size_t i = 0; i < nq; i++) {
            float v = l64[i] / 6.0f + 0.5f;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            moved += nearbyintf(255.0f * v) != q[i];
        }
        CHECK(moved == 0, "%d of %zu quantised latents differ", moved, nq);
    }
    free(q);

    /* a batch of 2: each image as decoded alone */
    {
        size_t n = 0;
        float *z = tu_tensor_f32(ref, "dec_latent_x8x8", &n);
        float *z2 = malloc(2 * n * sizeof *z2), *img = malloc(2 * 3 * 64 * 64 * sizeof *img);
        memcpy(z2, z, n * sizeof *z);
        memcpy(z2 + n, z, n * sizeof *z);
        CHECK(sdc_taesd_decode(t, &a, img, z2, 2, 8, 8, &e) == 0, "batch: %s", e.msg);
        CHECK(d8 && !memcmp(img, d8, 3 * 64 * 64 * sizeof *img) && !memcmp(img + 3 * 64 * 64, d8, 3 * 64 * 64 * sizeof *img),
              "batch of 2: not each image's bits");
        free(z); free(z2); free(img);
    }

    /* the standalone layout: the same tensors, no prefix, the decoder numbered from 1 */
    {
        char pd[64], pe[64];
        snprintf(pd, sizeof pd, "/tmp/sdc_taesd_dec_%d.safetensors", (int)getpid());
        snprintf(pe, sizeof pe, "/tmp/sdc_taesd_enc_%d.safetensors", (int)getpid());
        CHECK(write_standalone(st, "decoder.layers.", 1, pd) == 0 && write_standalone(st, "encoder.layers.", 0, pe) == 0,
              "writing the standalone files");
        sdc_store *sd = NULL, *se = NULL;
        sdc_taesd *td = load_file(pd, &sd, &e);
        CHECK(td, "standalone decoder: %s", e.msg);
        if (td) {
            CHECK(sdc_taesd_has_decoder(td) && !sdc_taesd_has_encoder(td), "standalone decoder: halves");
            float *o = check_decode(td, ref, &a, "dec_latent_x12x6", "dec_out_x12x6", NULL);
            CHECK(o && d12 && !memcmp(o, d12, 3 * 96 * 48 * sizeof *o), "standalone decoder: not the same bits");
            free(o);
            CHECK(sdc_taesd_encode(td, &a, NULL, NULL, 1, 64, 64, &e) == -1 && strstr(e.msg, "no encoder"),
                  "encode without encoder: %s", e.msg);
        }
        sdc_taesd *te = load_file(pe, &se, &e);
        CHECK(te, "standalone encoder: %s", e.msg);
        if (te) {
            CHECK(!sdc_taesd_has_decoder(te) && sdc_taesd_has_encoder(te), "standalone encoder: halves");
            float *o = check_encode(te, ref, &a, "x48x80", NULL);
            CHECK(o && l48 && !memcmp(o, l48, 4 * 6 * 10 * sizeof *o), "standalone encoder: not the same bits");
            free(o);
        }
        sdc_taesd_free(td); sdc_taesd_free(te);
        sdc_store_close(sd); sdc_store_close(se);
        unlink(pd); unlink(pe);
    }

    /* errors */
    {
        CHECK(sdc_taesd_decode(t, &a, d8, NULL, 1, 0, 8, &e) == -1 && strstr(e.msg, "taesd: cannot decode"),
              "zero size: %s", e.msg);
        CHECK(sdc_taesd_decode(t, &a, d8, NULL, 1, 2000, 8, &e) == -1, "too large: %s", e.msg);
        CHECK(sdc_taesd_encode(t, &a, l64, NULL, 1, 60, 64, &e) == -1 && strstr(e.msg, "multiples of 8"),
              "odd size: %s", e.msg);
        sdc_store *s2 = NULL;
        sdc_taesd *bad = load_file("tests/data/tiny-sd1.safetensors", &s2, &e);
        CHECK(!bad && strstr(e.msg, "no TAESD weights"), "a checkpoint is not a TAESD: %s", e.msg);
        sdc_taesd_free(bad);
        sdc_store_close(s2);
        /* a decoder without one of its block convs */
        char pd[64];
        snprintf(pd, sizeof pd, "/tmp/sdc_taesd_bad_%d.safetensors", (int)getpid());
        sdc_store *part = sdc_store_new();
        CHECK(write_standalone(st, "decoder.layers.", 1, pd) == 0, "write");
        /* drop tensor "8.conv.2.weight" (diffusers decoder.layers.7) by renaming it in the header */
        size_t n = 0;
        char *buf = tu_slurp(pd, &n);
        char *p = buf ? strstr(buf + 8, "\"8.conv.2.weight\"") : NULL;
        if (p) p[1] = 'x';
        FILE *f = fopen(pd, "wb");
        if (f && buf) { fwrite(buf, 1, n, f); fclose(f); }
        free(buf);
        CHECK(sdc_store_open(part, pd, NULL, &e) == 0, "%s", e.msg);
        bad = sdc_taesd_load(part, &e);
        CHECK(!bad && strstr(e.msg, "missing tensor 8.conv.2.weight"), "missing conv: %s", e.msg);
        sdc_taesd_free(bad);
        sdc_store_close(part);
        unlink(pd);
    }

    free(d8); free(d12); free(l64); free(l48);
    sdc_arena_free(&a);
    sdc_taesd_free(t);
    sdc_store_close(st);
    sdc_store_close(ref);
    if (fails) { printf("%d check(s) failed\n", fails); return 1; }
    printf("ok\n");
    return 0;
}

/* test_vae.c — the autoencoder against the reference (diffusers AutoencoderKL on tiny-sd1):
 * decoder outputs for both latent sizes (sdc_vae_decode takes the sampler's latents and divides
 * by 0.18215 itself, as the pipeline does), the decoder and encoder intermediates, the encoder
 * moments / mean / clamped logvar; the f16 and f32 files (and a .ckpt where this build reads
 * ckpt); a batch of 2; a separate VAE file
 * with bare keys and Linear [C,C] attention weights; clear errors for a store without a VAE,
 * a missing shortcut conv and bad sizes. Tolerance (fixtures README): atol 1e-4, or 2e-5 of
 * max|ref|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "models/vae.h"
#include "runtime/store.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

#define ATOL 1e-4
#define RTOL_OF_MAX 2e-5

static const char *REF = "tests/data/refs/sd1_vae.safetensors";

static int within(double err, double refmax) {
    return err <= ATOL || err <= RTOL_OF_MAX * refmax;
}

/* Compares each tapped activation with "<prefix>.<name>" of the reference. */
typedef struct tapcheck {
    const sdc_store *ref;
    const char *prefix;
    int n_checked;
    double worst;
} tapcheck;

static void on_tap(void *user, const char *name, const float *x, int C, int H, int W) {
    tapcheck *t = user;
    char full[160];
    snprintf(full, sizeof full, "%s.%s", t->prefix, name);
    size_t n = 0;
    float *r = tu_tensor_f32(t->ref, full, &n);
    if (!r) return;                            /* not every tap has a reference */
    CHECK(n == (size_t)C * H * W, "%s: %zu elements, tapped %dx%dx%d", full, n, C, H, W);
    if (n == (size_t)C * H * W) {
        double rm, err = tu_max_abs_diff(x, r, n, &rm);
        printf("  %-48s max abs err %.3g (max|ref| %.3g)\n", full, err, rm);
        CHECK(within(err, rm), "%s err %g", full, err);
        if (err > t->worst) t->worst = err;
        t->n_checked++;
    }
    free(r);
}

/* Decodes dec_latent_<c> and compares with dec_out_<c> (and its f64 twin, for the record). */
static double check_decode(sdc_vae *v, const sdc_store *ref, sdc_arena *a, const char *c,
                           int taps) {
    char n1[64], n2[64], n3[64];
    snprintf(n1, sizeof n1, "dec_latent_%s", c);
    snprintf(n2, sizeof n2, "dec_out_%s", c);
    snprintf(n3, sizeof n3, "dec_out_%s_f64", c);
    const sdc_tensor *zt = sdc_store_get(ref, n1);
    size_t nz = 0, no = 0, n64 = 0;
    float *z = tu_tensor_f32(ref, n1, &nz), *want = tu_tensor_f32(ref, n2, &no), *w64 = tu_tensor_f32(ref, n3, &n64);
    CHECK(zt && z && want && zt->ndim == 4, "reference %s / %s", n1, n2);
    double err = INFINITY;
    if (!zt || !z || !want) return err;
    const int h = (int)zt->shape[2], w = (int)zt->shape[3], f = sdc_vae_downscale(v);
    CHECK(no == (size_t)3 * h * f * w * f, "%s size", n2);
    float *img = malloc(no * sizeof *img);
    tapcheck tc = {ref, "dbg_dec_x8x8", 0, 0};
    if (taps) sdc_vae_set_tap(v, on_tap, &tc);
    sdc_err e = {{0}};
    int rc = sdc_vae_decode(v, a, img, z, 1, h, w, &e);
    sdc_vae_set_tap(v, NULL, NULL);
    CHECK(rc == 0, "decode %s: %s", c, e.msg);
    if (taps) CHECK(tc.n_checked == 8, "%d decoder intermediates checked, 8 expected", tc.n_checked);
    double rm;
    err = tu_max_abs_diff(img, want, no, &rm);
    double e64 = w64 ? tu_max_abs_diff(img, w64, no, NULL) : NAN;
    printf("decode %s: dec_out max abs err %.3g (max|ref| %.3g), vs f64 run %.3g\n", c, err, rm,
           e64);
    CHECK(within(err, rm), "decode %s err %g", c, err);

    /* A batch of two: the same latent twice gives the single result twice. */
    float *z2 = malloc(2 * nz * sizeof *z2), *img2 = malloc(2 * no * sizeof *img2);
    memcpy(z2, z, nz * sizeof *z);
    memcpy(z2 + nz, z, nz * sizeof *z);
    rc = sdc_vae_decode(v, a, img2, z2, 2, h, w, &e);
    CHECK(rc == 0 && !memcmp(img2, img, no * sizeof *img) && !memcmp(img2 + no, img, no * sizeof *img),
          "batch of 2 differs from single decodes (%s)", e.msg);
    free(z2);
    free(img2);
    free(img);
    free(z);
    free(want);
    free(w64);
    return err;
}

/* Encodes enc_image_x64x64; compares mean, clamped logvar and the moments / intermediates. */
static double check_encode(sdc_vae *v, const sdc_store *ref, sdc_arena *a) {
    size_t ni = 0, nm = 0, nl = 0;
    float *img = tu_tensor_f32(ref, "enc_image_x64x64", &ni);
    float *mean_ref = tu_tensor_f32(ref, "enc_mean_x64x64", &nm);
    float *lv_ref = tu_tensor_f32(ref, "enc_logvar_x64x64", &nl);
    CHECK(img && mean_ref && lv_ref && ni == 3 * 64 * 64 && nm == nl, "encoder references");
    double err = INFINITY;
    if (!img || !mean_ref || !lv_ref) return err;
    float *mean = malloc(nm * sizeof *mean), *lv = malloc(nl * sizeof *lv);
    tapcheck tc = {ref, "dbg_enc_x64x64", 0, 0};
    sdc_vae_set_tap(v, on_tap, &tc);
    sdc_err e = {{0}};
    int rc = sdc_vae_encode(v, a, mean, lv, img, 1, 64, 64, &e);
    sdc_vae_set_tap(v, NULL, NULL);
    CHECK(rc == 0, "encode: %s", e.msg);
    CHECK(tc.n_checked == 8, "%d encoder intermediates checked, 8 expected", tc.n_checked);
    float *mom = tu_tensor_f32(ref, "enc_moments_x64x64", NULL);   /* [mean(4) | logvar(4)] */
    double rm, rl;
    err = tu_max_abs_diff(mean, mean_ref, nm, &rm);
    double el = tu_max_abs_diff(lv, lv_ref, nl, &rl);
    printf("encode 64x64: enc_mean max abs err %.3g (max|ref| %.3g), enc_logvar %.3g (max|ref| %.3g)\n",
           err, rm, el, rl);
    CHECK(within(err, rm), "enc_mean err %g", err);
    CHECK(within(el, rl), "enc_logvar err %g", el);
    if (mom) {
        double mm, em = tu_max_abs_diff(mean, mom, nm, &mm);
        CHECK(within(em, mm), "mean vs enc_moments[:4] err %g", em);
    }
    /* logvar may be NULL */
    rc = sdc_vae_encode(v, a, mean, NULL, img, 1, 64, 64, &e);
    CHECK(rc == 0, "encode without logvar: %s", e.msg);
    free(mom);
    free(mean);
    free(lv);
    free(img);
    free(mean_ref);
    free(lv_ref);
    return err > el ? err : el;
}

/* The same autoencoder loaded in low-mem mode (sdc_vae_params.low_mem: the matrices stay the
 * store's views, widened per layer into the arena) must give the default mode's bits: decodes
 * of both reference latents, a tiled decode, an encode (mean and logvar). Its weight scratch
 * comes from the arena, so its decode's arena peak is the larger one. */
static void check_low_mem(sdc_vae *v, const sdc_store *st, const sdc_store *ref, sdc_arena *a) {
    sdc_err e = {{0}};
    sdc_vae_params p = {1};
    sdc_vae *vl = sdc_vae_load_ex(st, &p, &e);
    CHECK(vl, "low-mem load: %s", e.msg);
    if (!vl) return;
    int same = 1;
    static const char *const lat[2] = {"dec_latent_x8x8", "dec_latent_x16x16"};
    for (int i = 0; i < 2; i++) {
        const sdc_tensor *zt = sdc_store_get(ref, lat[i]);
        size_t nz = 0;
        float *z = tu_tensor_f32(ref, lat[i], &nz);
        CHECK(zt && z && zt->ndim == 4, "reference %s", lat[i]);
        if (!zt || !z) { free(z); continue; }
        const int h = (int)zt->shape[2], w = (int)zt->shape[3], f = sdc_vae_downscale(v);
        const size_t no = (size_t)3 * h * f * w * f;
        float *d = malloc(no * sizeof *d), *l = malloc(no * sizeof *l);
        CHECK(sdc_vae_decode(v, a, d, z, 1, h, w, &e) == 0, "decode: %s", e.msg);
        size_t pd = sdc_vae_last_peak(v);
        CHECK(sdc_vae_decode(vl, a, l, z, 1, h, w, &e) == 0, "low-mem decode: %s", e.msg);
        size_t pl = sdc_vae_last_peak(vl);
        same &= !memcmp(d, l, no * sizeof *d);
        printf("low-mem decode %s: bit-identical %s, arena peak %.1f KB (default %.1f KB)\n", lat[i],
               !memcmp(d, l, no * sizeof *d) ? "yes" : "NO", pl / 1e3, pd / 1e3);
        CHECK(pl > pd, "low-mem decode peak %zu <= default %zu: weights not widened in the arena?", pl, pd);
        if (h > 4) {   /* tiles of 4 latents, overlap 2 */
            CHECK(sdc_vae_decode_tiled(v, a, d, z, 1, h, w, 4, 2, &e) == 0, "tiled: %s", e.msg);
            CHECK(sdc_vae_decode_tiled(vl, a, l, z, 1, h, w, 4, 2, &e) == 0, "low-mem tiled: %s", e.msg);
            same &= !memcmp(d, l, no * sizeof *d);
        }
        free(d); free(l); free(z);
    }
    size_t ni = 0;
    float *img = tu_tensor_f32(ref, "enc_image_x64x64", &ni);
    if (img && ni == 3 * 64 * 64) {
        size_t nm = (size_t)sdc_vae_latent_channels(v) * 8 * 8;
        float *m1 = malloc(nm * sizeof *m1), *l1 = malloc(nm * sizeof *l1);
        float *m2 = malloc(nm * sizeof *m2), *l2 = malloc(nm * sizeof *l2);
        CHECK(sdc_vae_encode(v, a, m1, l1, img, 1, 64, 64, &e) == 0, "encode: %s", e.msg);
        CHECK(sdc_vae_encode(vl, a, m2, l2, img, 1, 64, 64, &e) == 0, "low-mem encode: %s", e.msg);
        same &= !memcmp(m1, m2, nm * sizeof *m1) && !memcmp(l1, l2, nm * sizeof *l1);
        free(m1); free(l1); free(m2); free(l2);
    }
    free(img);
    printf("low-mem mode (decodes, tiled decode, encode): bit-identical %s\n", same ? "yes" : "NO");
    CHECK(same, "low-mem output differs from the default mode's");
    sdc_vae_free(vl);
}

static void check_model(const char *model) {
    printf("== %s\n", model);
    sdc_store *st = sdc_store_new(), *ref = sdc_store_new();
    sdc_err e = {{0}};
    int rc = sdc_store_open(st, model, NULL, &e);
    CHECK(rc == 0, "%s", e.msg);
    rc |= sdc_store_open(ref, REF, NULL, &e);
    CHECK(rc == 0, "%s", e.msg);
    sdc_vae *v = rc ? NULL : sdc_vae_load(st, &e);
    CHECK(v, "load %s: %s", model, e.msg);
    if (v) {
        CHECK(sdc_vae_latent_channels(v) == 4 && sdc_vae_downscale(v) == 8 &&
              sdc_vae_has_encoder(v), "sizes from the weights");
        sdc_arena a;
        sdc_arena_init(&a, 1 << 20);
        double d1 = check_decode(v, ref, &a, "x8x8", 1);
        double d2 = check_decode(v, ref, &a, "x16x16", 0);
        double en = check_encode(v, ref, &a);
        check_low_mem(v, st, ref, &a);
        printf("max abs err: decode %.3g, encode %.3g; arena peak %.1f MB\n", fmax(d1, d2), en,
               a.peak / 1e6);
        CHECK(a.in_use == 0, "arena not released: %zu bytes", a.in_use);
        /* bad sizes */
        float dummy[3 * 64 * 64];
        CHECK(sdc_vae_encode(v, &a, dummy, NULL, dummy, 1, 60, 64, &e) == -1, "60x64 encoded");
        printf("bad size: %s\n", e.msg);
        CHECK(sdc_vae_decode(v, &a, dummy, dummy, 0, 8, 8, &e) == -1, "N = 0 decoded");
        CHECK(sdc_vae_decode(v, &a, dummy, dummy, 1, 0, 8, &e) == -1, "h = 0 decoded");
        sdc_arena_free(&a);
    }
    sdc_vae_free(v);
    sdc_store_close(st);
    sdc_store_close(ref);
}

/* Writes the first_stage_model.* tensors of src as a separate VAE file: bare keys, raw bytes
 * unchanged; with linear_attn the mid attention's 1x1 convs become Linear [C,C] (diffusers'
 * layout); tensors named skip are left out. */
static int write_bare_vae(const sdc_store *src, const char *path, int linear_attn,
                          const char *skip) {
    const char *pre = "first_stage_model.";
    size_t cap = 1 << 20, off = 0;
    char *hdr = malloc(cap);
    strcpy(hdr, "{");
    FILE *f = fopen(path, "wb");
    if (!f) { free(hdr); return -1; }
    int first = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sdc_store_count(src); i++) {
            const sdc_tensor *t = sdc_store_at(src, i);
            if (strncmp(t->name, pre, strlen(pre))) continue;
            const char *bare = t->name + strlen(pre);
            if (skip && !strcmp(bare, skip)) continue;
            if (pass == 1) { fwrite(t->data, 1, t->nbytes, f); continue; }
            int nd = t->ndim;
            if (linear_attn && strstr(bare, "attn_1.") && nd == 4 && strstr(bare, ".weight") &&
                !strstr(bare, ".norm."))
                nd = 2;
            char shp[128] = "";
            for (int d = 0; d < nd; d++)
                snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", d ? "," : "",
                         (long long)t->shape[d]);
            snprintf(hdr + strlen(hdr), cap - strlen(hdr),
                     "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                     first ? "" : ",", bare, sdc_dtype_name(t->dtype), shp, off, off + t->nbytes);
            off += t->nbytes;
            first = 0;
        }
        if (pass == 0) {
            strcat(hdr, "}");
            while (strlen(hdr) % 8) strcat(hdr, " ");
            uint64_t hl = strlen(hdr);
            fwrite(&hl, 8, 1, f);
            fwrite(hdr, 1, hl, f);
        }
    }
    free(hdr);
    return fclose(f);
}

static void check_separate_file(void) {
    printf("== separate VAE file (bare keys, Linear attention weights)\n");
    sdc_err e = {{0}};
    sdc_store *ck = sdc_store_new(), *ref = sdc_store_new();
    CHECK(sdc_store_open(ck, "tests/data/tiny-sd1-fp16.safetensors", NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_open(ref, REF, NULL, &e) == 0, "%s", e.msg);
    char path[] = "/tmp/sdc_test_vae_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    CHECK(write_bare_vae(ck, path, 1, NULL) == 0, "write %s", path);
    sdc_store *st = sdc_store_new();
    CHECK(sdc_store_open(st, path, NULL, &e) == 0, "%s", e.msg);
    sdc_vae *v = sdc_vae_load(st, &e);
    CHECK(v, "bare VAE: %s", e.msg);
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    if (v) {
        check_decode(v, ref, &a, "x8x8", 0);
        check_encode(v, ref, &a);
    }
    sdc_vae_free(v);
    /* Opened after a checkpoint, in one store (`--vae`): its bare keys are used. */
    CHECK(sdc_store_open(ck, path, NULL, &e) == 0, "%s", e.msg);
    v = sdc_vae_load(ck, &e);
    CHECK(v, "checkpoint + VAE: %s", e.msg);
    if (v) check_decode(v, ref, &a, "x8x8", 0);
    sdc_vae_free(v);
    sdc_store_close(st);

    /* A block that changes width without its shortcut conv. */
    CHECK(write_bare_vae(ck, path, 0, "decoder.up.1.block.0.nin_shortcut.weight") == 0, "write");
    st = sdc_store_new();
    CHECK(sdc_store_open(st, path, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_vae_load(st, &e) == NULL && strstr(e.msg, "decoder.up.1.block.0.nin_shortcut.weight"),
          "missing shortcut: '%s'", e.msg);
    printf("missing shortcut: %s\n", e.msg);
    sdc_store_close(st);
    /* No VAE at all. */
    st = sdc_store_new();
    CHECK(sdc_store_open(st, "tests/data/refs/sd1_text_encoder.safetensors", NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_vae_load(st, &e) == NULL && strstr(e.msg, "no autoencoder"), "no VAE: '%s'", e.msg);
    printf("no VAE: %s\n", e.msg);
    sdc_store_close(st);
    sdc_arena_free(&a);
    sdc_store_close(ck);
    sdc_store_close(ref);
    unlink(path);
}

int main(void) {
    sdc_kernels_set_threads(2);
    check_model("tests/data/tiny-sd1-fp16.safetensors");
    check_model("tests/data/tiny-sd1.safetensors");
    check_model("tests/data/tiny-sd1-fp16.ckpt");
    check_separate_file();
    printf(fails ? "test_vae: %d FAILED\n" : "test_vae: ok\n", fails);
    return fails ? 1 : 0;
}

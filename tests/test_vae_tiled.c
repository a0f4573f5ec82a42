/* test_vae_tiled.c — sdc_vae_decode_tiled on tiny-sd1 (fp16 file):
 *  (a) a tile that covers the whole latent gives sdc_vae_decode's output bit for bit (also with
 *      an overlap, a batch of 2 and a tile larger than the latent);
 *  (b) the reference 16x16 latent in 8x8 tiles (overlap 4) stays close to the untiled decode;
 *      the bound is checked to catch broken blends built here from the same tiles (a tile
 *      shifted by one pixel, the ramps left out: last tile wins);
 *  (c) the arena peak of a tiled decode is set by the tile, not the image: a 64x64 latent in
 *      36x36 tiles (overlap 8; 2x2 tiles) needs about what one 36x36 decode needs, the same as
 *      a 36x64 latent (1x2 such tiles), and far less than the untiled 64x64 decode; a tile
 *      larger than needed is shrunk (64 latents in tiles of 40, overlap 8: 2 tiles of 36);
 *  and clear errors for bad tilings.
 * GroupNorm statistics are per tile, so (b) cannot be exact; see TILED_MAX_ABS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "models/vae.h"
#include "runtime/store.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static const char *MODEL = "tests/data/tiny-sd1-fp16.safetensors";
static const char *REF = "tests/data/refs/sd1_vae.safetensors";

/* Measured for (b): max |tiled - untiled| 0.300, mean 0.0404, with |untiled| up to 2.07. An
 * 8x8 tile is a quarter of the latent, and the tiny VAE's mid-block attention and GroupNorms see
 * only the tile, so the difference is real, not rounding (larger tiles shrink it: 12x12/8 gives
 * 0.17, 15x15/7 0.13; hard seams, overlap 0, give 1.3). The bounds leave ~17% / 25% room and
 * stay far below the broken blends: a tile shifted by one pixel 1.04, no ramps 1.78. */
#define TILED_MAX_ABS 0.35
#define TILED_MEAN_ABS 0.05

static double max_abs(const float *a, const float *b, size_t n, double *mean) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (isnan(d)) m = INFINITY;            /* NaN fails, and stays */
        else if (d > m) m = d;
        s += d;
    }
    if (mean) *mean = s / (double)n;
    return m;
}

static float lcg_normalish(unsigned *s) {   /* sum of 4 uniforms, centred, std ~1 */
    float a = 0;
    for (int i = 0; i < 4; i++) { *s = *s * 1664525u + 1013904223u; a += (float)(*s >> 8) / 16777216.0f; }
    return (a - 2.0f) * 1.7f;
}

/* (a) bit-identical when the tile covers the whole latent. */
static void test_full_cover(sdc_vae *v, sdc_arena *a, const float *z16) {
    const size_t n1 = (size_t)3 * 128 * 128;
    float *z2 = malloc(2 * 4 * 256 * sizeof *z2);
    float *ref = malloc(2 * n1 * sizeof *ref), *out = malloc(2 * n1 * sizeof *out);
    memcpy(z2, z16, 4 * 256 * sizeof *z2);
    for (int i = 0; i < 4 * 256; i++) z2[4 * 256 + i] = -0.5f * z16[(i * 7) % (4 * 256)];
    sdc_err e = {{0}};
    CHECK(sdc_vae_decode(v, a, ref, z2, 2, 16, 16, &e) == 0, "decode: %s", e.msg);
    static const int cases[][3] = {{16, 0, 1}, {16, 8, 1}, {40, 4, 1}, {16, 4, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int tile = cases[c][0], ov = cases[c][1], N = cases[c][2];
        memset(out, 0xff, 2 * n1 * sizeof *out);
        int rc = sdc_vae_decode_tiled(v, a, out, z2, N, 16, 16, tile, ov, &e);
        CHECK(rc == 0, "tiled decode tile %d: %s", tile, e.msg);
        int same = rc == 0 && memcmp(out, ref, N * n1 * sizeof *out) == 0;
        printf("(a) tile %d overlap %d N %d covering 16x16: %s\n", tile, ov, N,
               same ? "bit-identical" : "DIFFERS");
        CHECK(same, "tile %d covering the latent is not bit-identical to sdc_vae_decode", tile);
    }
    free(z2); free(ref); free(out);
}

/* Broken blends for (b), assembled here from the same 8x8 tiles as the tiled decode uses
 * (starts 0, 4, 8 along each side of 16): `shift` moves every tile one pixel right (0: none);
 * `ramps` 0 pastes whole tiles, the last one wins. */
static void broken_blend(sdc_vae *v, sdc_arena *a, float *img, const float *z, int shift,
                         int ramps) {
    const int H = 128, T = 64, st[3] = {0, 4, 8};
    float zt[4 * 64], it[3 * 64 * 64];
    float *wsum = calloc((size_t)H * H, sizeof *wsum);
    sdc_err e = {{0}};
    memset(img, 0, (size_t)3 * H * H * sizeof *img);
    for (int ty = 0; ty < 3; ty++)
        for (int tx = 0; tx < 3; tx++) {
            for (int c = 0; c < 4; c++)
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++)
                        zt[(c * 8 + y) * 8 + x] = z[(c * 16 + st[ty] + y) * 16 + st[tx] + x];
            if (sdc_vae_decode(v, a, it, zt, 1, 8, 8, &e)) { CHECK(0, "%s", e.msg); break; }
            for (int y = 0; y < T; y++)
                for (int x = 0; x < T; x++) {
                    int Y = st[ty] * 8 + y, X = st[tx] * 8 + x + shift;
                    if (X >= H) continue;
                    float wy = 1, wx = 1;
                    if (ramps) {   /* the same ramps as vae.c, 32 px */
                        if (ty > 0 && y < 32) wy = (y + 0.5f) / 32;
                        if (ty < 2 && y >= 32) wy = (T - y - 0.5f) / 32;
                        if (tx > 0 && x < 32) wx = (x + 0.5f) / 32;
                        if (tx < 2 && x >= 32) wx = (T - x - 0.5f) / 32;
                    }
                    for (int c = 0; c < 3; c++) {
                        float *o = &img[((size_t)c * H + Y) * H + X];
                        *o = ramps ? *o + wy * wx * it[(c * T + y) * T + x] : it[(c * T + y) * T + x];
                    }
                    wsum[Y * H + X] += wy * wx;
                }
        }
    if (ramps)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < H * H; i++)
                if (wsum[i] > 0) img[c * H * H + i] /= wsum[i];
    free(wsum);
}

/* (b) 8x8 tiles, overlap 4, on the reference 16x16 latent. */
static void test_close(sdc_vae *v, sdc_arena *a, const float *z16) {
    const size_t n = (size_t)3 * 128 * 128;
    float *ref = malloc(n * sizeof *ref), *out = malloc(n * sizeof *out);
    float *bad = malloc(n * sizeof *bad);
    sdc_err e = {{0}};
    CHECK(sdc_vae_decode(v, a, ref, z16, 1, 16, 16, &e) == 0, "decode: %s", e.msg);
    CHECK(sdc_vae_decode_tiled(v, a, out, z16, 1, 16, 16, 8, 4, &e) == 0, "tiled: %s", e.msg);
    double mean, err = max_abs(out, ref, n, &mean), rmax = 0;
    for (size_t i = 0; i < n; i++) if (fabs(ref[i]) > rmax) rmax = fabs(ref[i]);
    printf("(b) 16x16 latent, 8x8 tiles, overlap 4: max |tiled - untiled| %.4g (mean %.4g, "
           "max |untiled| %.3g); bounds %.3g / %.3g\n", err, mean, rmax, TILED_MAX_ABS,
           TILED_MEAN_ABS);
    CHECK(err <= TILED_MAX_ABS && mean <= TILED_MEAN_ABS, "tiled decode too far from untiled");

    /* The same tiles blended here with vae.c's ramps must match the library's blend. */
    broken_blend(v, a, bad, z16, 0, 1);
    double self = max_abs(bad, out, n, NULL);
    printf("    the same ramps assembled in the test: max diff to the library %.3g\n", self);
    CHECK(self <= 1e-5, "tile blend differs from the test's own assembly: %g", self);
    broken_blend(v, a, bad, z16, 1, 1);
    double shifted = max_abs(bad, ref, n, NULL);
    broken_blend(v, a, bad, z16, 0, 0);
    double noramp = max_abs(bad, ref, n, NULL);
    printf("    broken blends vs untiled: tiles shifted 1 px %.4g, no ramps %.4g\n", shifted,
           noramp);
    CHECK(shifted > TILED_MAX_ABS && noramp > TILED_MAX_ABS,
          "the bound does not catch a broken blend");
    free(ref); free(out); free(bad);
}

/* Arena peak of one decode of sh x s latents (tile 0: untiled). */
static size_t decode_peak(sdc_vae *v, int sh, int s, int tile, int ov, const float *z) {
    sdc_arena a;
    sdc_arena_init(&a, 0);
    size_t n = (size_t)3 * 64 * sh * s;
    float *img = malloc(n * sizeof *img);
    sdc_err e = {{0}};
    int rc = tile ? sdc_vae_decode_tiled(v, &a, img, z, 1, sh, s, tile, ov, &e)
                  : sdc_vae_decode(v, &a, img, z, 1, sh, s, &e);
    CHECK(rc == 0, "decode %dx%d tile %d: %s", sh, s, tile, e.msg);
    size_t p = sdc_vae_last_peak(v);
    CHECK(p == a.peak, "sdc_vae_last_peak %zu != arena peak %zu on a fresh arena", p, a.peak);
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += fabs(img[i]);
    CHECK(rc == 0 && mean / n > 1e-3 && isfinite(mean), "decode %dx%d looks empty", sh, s);
    free(img);
    sdc_arena_free(&a);
    return p;
}

/* (c) arena peak bounded by the tile. */
static void test_peak(sdc_vae *v) {
    float *z = malloc(4 * 64 * 64 * sizeof *z);
    unsigned seed = 7;
    for (int i = 0; i < 4 * 64 * 64; i++) z[i] = 0.8f * lcg_normalish(&seed);
    /* Tiles of T = 36 latents (288 px) with overlap 8: 2x2 tiles on 64x64, 1x2 on 36x64;
     * asked for tiles of 40, 64 latents get the same 36 (2 tiles either way). */
    enum { T = 36, OV = 8, P = T * 8 };
    size_t one = decode_peak(v, T, T, 0, 0, z);
    size_t full = decode_peak(v, 64, 64, 0, 0, z);
    size_t t48 = decode_peak(v, T, 64, T, OV, z);
    size_t t64 = decode_peak(v, 64, 64, T, OV, z);
    size_t t40 = decode_peak(v, T, 64, 40, OV, z);
    printf("(c) arena peak: untiled 64x64 %.2f MiB; tiled %dx%d/%d: 64x64 %.2f MiB, %dx64 "
           "%.2f MiB (asked for tiles of 40: %.2f MiB); one untiled %dx%d decode %.2f MiB\n",
           full / 1048576.0, T, T, OV, t64 / 1048576.0, T, t48 / 1048576.0, t40 / 1048576.0, T,
           T, one / 1048576.0);
    CHECK(t40 == t48, "tiles of 40 over 64 latents not shrunk to 36: peak %zu vs %zu", t40, t48);
    /* The tile's decode, its latent crop and pixels, the ramps: a tile's worth, + 64 KiB. */
    size_t tile_bound = one + (size_t)(4 * T * T + 3 * P * P + 2 * P) * 4 +
                        (size_t)2 * 512 * 4 + 65536;
    CHECK(t64 <= tile_bound, "tiled 64x64 peak %zu above one tile's %zu", t64, tile_bound);
    CHECK(t64 >= t48 && t64 - t48 <= 4096,
          "tiled peak grows with the image: %zu (36x64) -> %zu (64x64)", t48, t64);
    CHECK(t64 * 2 < full, "tiled peak %zu not well below the untiled %zu", t64, full);
    free(z);
}

static void test_errors(sdc_vae *v, sdc_arena *a, const float *z16) {
    float *out = malloc((size_t)3 * 128 * 128 * sizeof *out);
    static const int bad[][2] = {{0, 0}, {8, 8}, {8, 9}, {8, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sdc_err e = {{0}};
        int rc = sdc_vae_decode_tiled(v, a, out, z16, 1, 16, 16, bad[i][0], bad[i][1], &e);
        printf("tile %d overlap %d: %s\n", bad[i][0], bad[i][1], e.msg);
        CHECK(rc != 0 && strstr(e.msg, "tiling"), "tile %d overlap %d accepted", bad[i][0],
              bad[i][1]);
    }
    sdc_err e = {{0}};
    CHECK(sdc_vae_decode_tiled(v, a, out, z16, 1, 0, 16, 8, 4, &e) != 0 && e.msg[0],
          "a 0x16 latent accepted");
    free(out);
}

int main(void) {
    sdc_kernels_set_threads(1);   /* one thread: robust timing on a shared, loaded machine */
    sdc_err e = {{0}};
    sdc_store *st = sdc_store_new(), *rs = sdc_store_new();
    if (sdc_store_open(st, MODEL, NULL, &e) || sdc_store_open(rs, REF, NULL, &e)) {
        printf("FAIL: %s\n", e.msg);
        return 1;
    }
    sdc_vae *v = sdc_vae_load(st, &e);
    if (!v) { printf("FAIL: %s\n", e.msg); return 1; }
    size_t nz = 0;
    float *z16 = tu_tensor_f32(rs, "dec_latent_x16x16", &nz);
    if (!z16 || nz != 4 * 256) { printf("FAIL: no dec_latent_x16x16 in %s\n", REF); return 1; }
    sdc_arena a;
    sdc_arena_init(&a, 0);
    test_full_cover(v, &a, z16);
    test_close(v, &a, z16);
    test_peak(v);
    test_errors(v, &a, z16);
    sdc_arena_free(&a);
    free(z16);
    sdc_vae_free(v);
    sdc_store_close(rs);
    sdc_store_close(st);
    printf("%s (%d failures)\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}

/* test_compare.c — the image half of compare.h on hand-made images (exact expectations), and
 * the tensor half on a fixture against itself and f32 vs f16 (equal values, dtypes differ). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/compare.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); fails++; } } while (0)

static void test_images(void) {
    enum { W = 5, H = 4, N = W * H * 3 };
    uint8_t a[N], b[N], sbs[N * 3];
    for (int i = 0; i < N; i++) a[i] = b[i] = (uint8_t)(i * 7);
    sdc_img_diff d = sdc_image_diff(a, b, W, H);
    CHECK(d.max_abs == 0 && d.n_diff == 0 && d.mse == 0 && isinf(d.psnr), "identical: max %d n %lld", d.max_abs, (long long)d.n_diff);
    double g = sdc_image_side_by_side(a, b, W, H, sbs);
    CHECK(g == 0, "identical: gain %g", g);
    int black = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W * 3; x++) black &= sbs[(size_t)y * W * 9 + W * 6 + x] == 0;
    CHECK(black, "identical: heat map not black");

    /* pixel (x=3, y=2), green: +10; pixel (0,0) red: +5 */
    b[(2 * W + 3) * 3 + 1] = (uint8_t)(a[(2 * W + 3) * 3 + 1] + 10);
    b[0] = 5;                           /* a[0] = 0 */
    d = sdc_image_diff(a, b, W, H);
    double mse = (100.0 + 25.0) / (3.0 * W * H);
    CHECK(d.max_abs == 10 && d.n_diff == 2, "max %d n %lld", d.max_abs, (long long)d.n_diff);
    CHECK(fabs(d.mse - mse) < 1e-12, "mse %g vs %g", d.mse, mse);
    CHECK(fabs(d.psnr - 10 * log10(255.0 * 255.0 / mse)) < 1e-9, "psnr %g", d.psnr);
    g = sdc_image_side_by_side(a, b, W, H, sbs);
    CHECK(fabs(g - 25.5) < 1e-12, "gain %g", g);
    const uint8_t *row2 = sbs + (size_t)2 * W * 9, *row0 = sbs;
    CHECK(!memcmp(row2, a + 2 * W * 3, W * 3) && !memcmp(row2 + W * 3, b + 2 * W * 3, W * 3), "A | B halves");
    const uint8_t *hot = row2 + W * 6 + 3 * 3, *half = row0 + W * 6;
    CHECK(hot[0] == 255 && hot[1] == 255 && hot[2] == 255, "max diff is white: %d %d %d", hot[0], hot[1], hot[2]);
    /* diff 5 x 25.5 = 127.5 → 128: 3*128 = 384 → red 255, green 129, blue 0 */
    CHECK(half[0] == 255 && half[1] == 129 && half[2] == 0, "half diff: %d %d %d", half[0], half[1], half[2]);
    CHECK(row2[W * 6 + 0] == 0 && row2[W * 6 + 1] == 0, "no diff is black");
    printf("images: max abs %d, mse %.4f, psnr %.3f dB, gain %.2f\n", d.max_abs, d.mse, d.psnr, g);
}

static sdc_store *open1(const char *path) {
    sdc_err e = {{0}};
    sdc_store *s = sdc_store_new();
    if (!s || sdc_store_open(s, path, NULL, &e)) {
        printf("FAIL: %s\n", e.msg);
        fails++;
        sdc_store_close(s);
        return NULL;
    }
    return s;
}

static void test_tensors(void) {
    sdc_store *a = open1("tests/data/tiny-sd1.safetensors"), *b = open1("tests/data/tiny-sd1-fp16.safetensors");
    if (!a || !b) { sdc_store_close(a); sdc_store_close(b); return; }
    sdc_cmp_result r;
    sdc_err e = {{0}};
    CHECK(!sdc_compare_stores(a, a, NULL, &r, &e), "%s", e.msg);
    CHECK(r.n == 995 && r.count[SDC_CMP_IDENTICAL] == 995 && sdc_cmp_same(&r) && !r.max_abs_name,
          "self: n %zu identical %zu", r.n, r.count[SDC_CMP_IDENTICAL]);
    sdc_cmp_result_free(&r);

    const char *w[] = {"model.", "first_stage_model.", "cond_stage_model."};
    sdc_cmp_opts o = {0, 0, w, 3};
    CHECK(!sdc_compare_stores(a, b, &o, &r, &e), "%s", e.msg);
    /* 980 float weights equal in value across F32/F16; position_ids (I64) identical */
    CHECK(r.n == 981 && r.count[SDC_CMP_EQUAL] == 980 && r.count[SDC_CMP_IDENTICAL] == 1 &&
          r.n_dtype_diff == 980 && r.n_skipped == 28 && sdc_cmp_same(&r),
          "f32/f16 weights: n %zu equal %zu identical %zu dtype %zu skipped %zu", r.n, r.count[SDC_CMP_EQUAL],
          r.count[SDC_CMP_IDENTICAL], r.n_dtype_diff, r.n_skipped);
    printf("f32 vs f16 weights: %zu equal values, %zu identical, %llu values compared\n",
           r.count[SDC_CMP_EQUAL], r.count[SDC_CMP_IDENTICAL], (unsigned long long)r.elems_compared);
    sdc_cmp_result_free(&r);

    /* whole files, A and B swapped: the f16 schedule buffers differ from their f32 originals */
    CHECK(!sdc_compare_stores(b, a, NULL, &r, &e), "%s", e.msg);
    CHECK(r.count[SDC_CMP_DIFFERENT] == 13 && !sdc_cmp_same(&r) && r.max_rel > 0 && r.max_rel <= 0x1p-11,
          "f16/f32 whole: different %zu max rel %g", r.count[SDC_CMP_DIFFERENT], r.max_rel);
    printf("f16 vs f32 whole: %zu different, max abs %g (%s), max rel %g\n", r.count[SDC_CMP_DIFFERENT],
           r.max_abs, r.max_abs_name, r.max_rel);
    sdc_cmp_result_free(&r);
    sdc_store_close(a);
    sdc_store_close(b);
}

int main(void) {
    test_images();
    test_tensors();
    if (fails) { printf("test_compare: %d failure(s)\n", fails); return 1; }
    printf("test_compare: all passed\n");
    return 0;
}

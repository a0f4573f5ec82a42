/* test_compare.c — the image half of compare.h on hand-made images (exact expectations), and
 * the tensor half on a fixture against itself and f32 vs f16 (equal values, dtypes differ). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/compare.h"
#include "runtime/names.h"

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
    sdc_cmp_opts o = {0, 0, w, 3, 0};
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

/* diffusers names as diffusers' AutoencoderKL / CLIPTextModel / UNet2DConditionModel store them
 * (written from diffusers' conversion tables for SD 1.x, by hand) → the original names; every
 * expected name must also exist in the original-layout fixture, so the targets are real. */
static int up_attn_sd1(void *ctx, int i) { (void)ctx; return i > 0; }

static void test_names(void) {
    static const char *const cases[][3] = {
        {"v", "encoder.down_blocks.2.resnets.0.conv_shortcut.weight", "first_stage_model.encoder.down.2.block.0.nin_shortcut.weight"},
        {"v", "encoder.down_blocks.1.downsamplers.0.conv.bias", "first_stage_model.encoder.down.1.downsample.conv.bias"},
        {"v", "encoder.mid_block.attentions.0.group_norm.weight", "first_stage_model.encoder.mid.attn_1.norm.weight"},
        {"v", "decoder.mid_block.attentions.0.to_q.weight", "first_stage_model.decoder.mid.attn_1.q.weight"},
        {"v", "decoder.mid_block.attentions.0.query.bias", "first_stage_model.decoder.mid.attn_1.q.bias"},
        {"v", "decoder.mid_block.attentions.0.to_out.0.weight", "first_stage_model.decoder.mid.attn_1.proj_out.weight"},
        {"v", "decoder.mid_block.attentions.0.proj_attn.bias", "first_stage_model.decoder.mid.attn_1.proj_out.bias"},
        {"v", "decoder.mid_block.resnets.1.norm2.bias", "first_stage_model.decoder.mid.block_2.norm2.bias"},
        {"v", "decoder.up_blocks.0.upsamplers.0.conv.weight", "first_stage_model.decoder.up.3.upsample.conv.weight"},
        {"v", "decoder.up_blocks.2.resnets.0.conv_shortcut.bias", "first_stage_model.decoder.up.1.block.0.nin_shortcut.bias"},
        {"v", "decoder.up_blocks.3.resnets.2.conv2.weight", "first_stage_model.decoder.up.0.block.2.conv2.weight"},
        {"v", "decoder.conv_norm_out.weight", "first_stage_model.decoder.norm_out.weight"},
        {"v", "post_quant_conv.bias", "first_stage_model.post_quant_conv.bias"},
        {"t", "text_model.final_layer_norm.weight", "cond_stage_model.transformer.text_model.final_layer_norm.weight"},
        {"u", "up_blocks.0.upsamplers.0.conv.weight", "model.diffusion_model.output_blocks.2.1.conv.weight"},
        {"u", "up_blocks.1.upsamplers.0.conv.bias", "model.diffusion_model.output_blocks.5.2.conv.bias"},
        {"u", "down_blocks.2.downsamplers.0.conv.weight", "model.diffusion_model.input_blocks.9.0.op.weight"},
        {"u", "down_blocks.1.resnets.1.time_emb_proj.bias", "model.diffusion_model.input_blocks.5.0.emb_layers.1.bias"},
        {"u", "mid_block.resnets.1.conv2.weight", "model.diffusion_model.middle_block.2.out_layers.3.weight"},
        {"u", "up_blocks.3.attentions.2.proj_out.bias", "model.diffusion_model.output_blocks.11.1.proj_out.bias"},
        {"u", "time_embedding.linear_2.weight", "model.diffusion_model.time_embed.2.weight"},
    };
    static const char *const bad[][2] = {
        {"v", "decoder.up_blocks.4.resnets.0.conv1.weight"},   /* 4 levels: no up block 4 */
        {"v", "encoder.whatever.weight"}, {"u", "down_blocks.-1.resnets.0.norm1.weight"},
        {"u", "down_blocks.0.resnets.0.bogus.weight"}, {"t", "transformer.text_model.x"}};
    sdc_store *st = open1("tests/data/tiny-sd1.safetensors");
    if (!st) return;
    int n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[512];
        int rc = sdc_diffusers_to_original(cases[i][0][0], cases[i][1], 2, 4, up_attn_sd1, NULL, out, sizeof out);
        CHECK(!rc && !strcmp(out, cases[i][2]), "%s → %s (expected %s)", cases[i][1], rc ? "(none)" : out, cases[i][2]);
        CHECK(sdc_store_get(st, cases[i][2]) != NULL, "%s is not in the fixture", cases[i][2]);
        n++;
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[512];
        CHECK(sdc_diffusers_to_original(bad[i][0][0], bad[i][1], 2, 4, up_attn_sd1, NULL, out, sizeof out) == -1,
              "%s should not map (got %s)", bad[i][1], out);
    }
    printf("names: %d diffusers names mapped to fixture names, %zu refused\n", n, sizeof bad / sizeof *bad);
    sdc_store_close(st);
}

int main(void) {
    test_images();
    test_names();
    test_tensors();
    if (fails) { printf("test_compare: %d failure(s)\n", fails); return 1; }
    printf("test_compare: all passed\n");
    return 0;
}

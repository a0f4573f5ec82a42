/* inpaint.c — mask preparation and latent blending of diffusers 0.25.1's inpainting pipeline
 * (VaeImageProcessor with do_binarize, prepare_mask_latents, the num_channels_unet == 4 branch
 * of the denoising loop). float32, each operation rounded on its own, as torch does. */
#include "pipeline/inpaint.h"

#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

void sdc_inpaint_mask(const uint8_t *grey, int W, int H, int f, float *mask_px, float *mask_lat) {
    size_t n = (size_t)W * H;
    for (size_t i = 0; i < n; i++) {
        float v = grey ? (float)grey[i] / 255.0f : 1.0f;   /* np.float32(L) / 255.0 */
        mask_px[i] = v < 0.5f ? 0.0f : 1.0f;
    }
    if (!mask_lat) return;
    int h = H / f, w = W / f;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) mask_lat[(size_t)i * w + j] = mask_px[(size_t)i * f * W + (size_t)j * f];
}

void sdc_inpaint_masked_image(const uint8_t *rgb, const float *mask_px, int W, int H, float *masked) {
    size_t hw = (size_t)W * H;
    for (size_t i = 0; i < hw; i++) {
        float keep = mask_px[i] < 0.5f ? 1.0f : 0.0f;
        for (int c = 0; c < 3; c++) {
            float v = rgb ? (float)rgb[3 * i + c] / 255.0f * 2.0f - 1.0f : 0.0f;
            masked[c * hw + i] = v * keep;
        }
    }
}

int sdc_inpaint_blend_step(void *ctx, const sdc_sample_state *s, int call, int n_calls, float *x,
                           sdc_err *e) {
    sdc_inpaint_blend *b = ctx;
    (void)n_calls;
    (void)e;
    sdc_sample_noise_to_next(s, call, b->proper, b->image_latents, b->noise);
    for (int c = 0; c < b->C; c++)
        for (int i = 0; i < b->hw; i++) {
            size_t k = (size_t)c * b->hw + i;
            float m = b->mask_lat[i];
            float kept = (1.0f - m) * b->proper[k], painted = m * x[k];
            x[k] = kept + painted;
        }
    return 0;
}

/* inpaint.h — the pieces of diffusers 0.25.1's StableDiffusionInpaintPipeline below the models:
 * the mask binarised and reduced to latent size, the masked image, and the latent blending an
 * ordinary (4-channel) UNet needs after each step. The generation (VAE encodes, random draws in
 * diffusers' order, the UNet's concat input for 9-channel UNets) is api/sdc.c's.
 *
 * A mask is one grey byte per pixel, white (>= 128, i.e. >= 0.5 after /255) = repaint. */
#ifndef SDC_INPAINT_H
#define SDC_INPAINT_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/sampler.h"

/* grey[H*W] (NULL: all white) → mask_px[H*W] = (grey/255 >= 0.5) as 0/1, and (if mask_lat is not
 * NULL) mask_lat[(H/f)*(W/f)] = mask_px[f·i, f·j]: F.interpolate(mode="nearest") to latent size
 * takes the top-left pixel of each f×f block. W and H are multiples of f. */
void sdc_inpaint_mask(const uint8_t *grey, int W, int H, int f, float *mask_px, float *mask_lat);

/* masked[3,H,W] = (rgb/255·2 − 1) · (mask_px < 0.5): the pixels to repaint become 0 (mid grey).
 * rgb: H*W*3 bytes (HWC), or NULL for no image (all 0). */
void sdc_inpaint_masked_image(const uint8_t *rgb, const float *mask_px, int W, int H, float *masked);

/* 4-channel inpainting: after each step the known region is put back, noised to the timestep the
 * next step runs at (the clean image latents after the last):
 *   x = (1 − mask_lat)·add_noise(image_latents, noise, t_next) + mask_lat·x
 * A sdc_post_step_fn: ctx is a sdc_inpaint_blend. */
typedef struct sdc_inpaint_blend {
    const float *image_latents;  /* [C, h, w], the init image's (scaled) latents */
    const float *noise;          /* [C, h, w], the initial N(0,1) noise as drawn */
    const float *mask_lat;       /* [h, w], 0/1 */
    int C, hw;
    float *proper;               /* [C, h, w] scratch (init_latents_proper) */
} sdc_inpaint_blend;
int sdc_inpaint_blend_step(void *ctx, const sdc_sample_state *s, int call, int n_calls, float *x,
                           sdc_err *e);

#endif

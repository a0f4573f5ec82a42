/* vae.h — the SD autoencoder (ldm AutoencoderKL): decoder and encoder from first_stage_model.*
 * (or bare encoder./decoder. keys of a separate VAE file). Mid-block attention stored as 1x1
 * convs (old checkpoints) or linears (diffusers) are both read. Owns its f32 weights (in low-mem
 * mode only the norms and biases). */
#ifndef SDC_VAE_H
#define SDC_VAE_H

#include "kernels/arena.h"
#include "runtime/err.h"
#include "runtime/store.h"

typedef struct sdc_vae sdc_vae;

/* Binds from st; the prefix is detected ("first_stage_model." or "" or "vae."). Latent scale
 * 0.18215, shift 0 (SD 1.x / 2.x). */
sdc_vae *sdc_vae_load(const sdc_store *st, sdc_err *e);

typedef struct sdc_vae_params {
    int low_mem;     /* 1: keep no f32 copy of the conv/attention matrices: they stay the store's
                        views and are widened per layer into the call's arena (models/weight.h);
                        same output bits. The store must then stay open until sdc_vae_free. */
    float scale;     /* the latent space's scale (the model config's: SD 1.x/2.x 0.18215, SDXL
                        0.13025); <= 0: 0.18215 */
    float shift;     /* and shift (0 for every SD family) */
    int bf16;        /* 1: the wide 3x3 convs (Winograd) take bf16 operands with f32 sums
                        (k_conv3x3_wino_band_bf16; weights rounded per call, as they are packed
                        per call); GroupNorm, attention, conv_out stay f32. 0: f32 */
} sdc_vae_params;
/* sdc_vae_load with parameters; p NULL = all defaults (= sdc_vae_load). */
sdc_vae *sdc_vae_load_ex(const sdc_store *st, const sdc_vae_params *p, sdc_err *e);
void     sdc_vae_free(sdc_vae *v);
int      sdc_vae_has_encoder(const sdc_vae *v);
int      sdc_vae_latent_channels(const sdc_vae *v);   /* E, from post_quant_conv (4 in SD) */
int      sdc_vae_downscale(const sdc_vae *v);         /* f, from the levels (8 in SD) */

/* img[N,3,f·h,f·w] = decoder(post_quant_conv(z / scale + shift)) — raw output, about [-1,1], not
 * clamped. z[N,E,h,w] are the sampler's latents (the params' scale and shift are undone here); E and f are
 * sdc_vae_latent_channels and sdc_vae_downscale, read from the file: the caller sizes z by E. */
int sdc_vae_decode(sdc_vae *v, sdc_arena *a, float *img, const float *z, int N, int h, int w,
                   sdc_err *e);

/* The same image decoded in overlapping tiles (for machines with little RAM: activation memory
 * is one tile's, whatever the image size): tiles of at most tile x tile latents (tile * 8
 * pixels a side; shrunk to the least size that needs no more tiles) whose neighbours overlap by
 * at least `overlap` latents, blended with linear ramps across the
 * overlap (as stable-diffusion.cpp and diffusers' tiled_decode do). GroupNorm statistics are per
 * tile, so the result is close to, not equal to, sdc_vae_decode's; when one tile covers the
 * whole latent (tile >= h and tile >= w) the result is sdc_vae_decode's, bit for bit.
 * Needs tile >= 1 and 0 <= overlap < tile (e.g. 32 and 8). */
int sdc_vae_decode_tiled(sdc_vae *v, sdc_arena *a, float *img, const float *z, int N, int h,
                         int w, int tile, int overlap, sdc_err *e);

/* Arena bytes the last sdc_vae_decode / _decode_tiled / _encode used at most, above what was in
 * use in a when it was called (its activation peak; the arena's own a->peak keeps the overall
 * high-water mark). */
size_t sdc_vae_last_peak(const sdc_vae *v);

/* mean, logvar [N,E,H/f,W/f] of quant_conv(encoder(img[N,3,H,W])) (logvar clamped to [-30,20]),
 * UNscaled (latents are (mean - shift) * scale, the params'). logvar may be NULL. */
int sdc_vae_encode(sdc_vae *v, sdc_arena *a, float *mean, float *logvar, const float *img,
                   int N, int H, int W, sdc_err *e);

/* Debug tap (tests, tracing): when set, the forwards call tap(user, name, x, C, H, W) with
 * intermediate activations of each image, named as diffusers' modules: "post_quant_conv",
 * "decoder.conv_in", "decoder.mid_block", "decoder.up_blocks.i" (i = 0 is ldm's up[L-1]),
 * "decoder.conv_norm_out" (before SiLU), "encoder.conv_in", "encoder.down_blocks.i",
 * "encoder.mid_block", "encoder.conv_out", "quant_conv". x is valid only during the call. */
typedef void (*sdc_vae_tap)(void *user, const char *name, const float *x, int C, int H, int W);
void sdc_vae_set_tap(sdc_vae *v, sdc_vae_tap tap, void *user);

#endif

/* unet.h — the SD UNet (ldm openaimodel.UNetModel): SD 1.x (conv proj_in/out) and SD 2.x (linear
 * proj_in/out), original layout model.diffusion_model.* (and diffusers folder layout where
 * supported). Levels, widths, res blocks, transformer depth and context width come from the
 * weights; heads from the caller. Owns its f32 conv weights (converted once at load; the Winograd
 * convs' as their packed transforms) and the small ones (norms, biases), or in low-mem mode only
 * the small ones; the Linears' weights and most Winograd convs' are the store's views, streamed
 * by each call. */
#ifndef SDC_UNET_H
#define SDC_UNET_H

#include <stdint.h>

#include "kernels/arena.h"
#include "runtime/err.h"
#include "runtime/lora.h"
#include "runtime/store.h"

typedef struct sdc_unet_params {
    int num_heads;          /* > 0: fixed head count at every level (SD 1.x: 8) */
    int head_dim;           /* > 0: fixed head width instead (SD 2.x: 64); used when num_heads <= 0 */
    int low_mem;            /* 1: keep no f32 copy of the conv weights either: they stay the store's
                               views (f16 as on disk) and are widened per layer into the forward's
                               arena, the Winograd convs' streamed (k_conv3x3_wino_stream; models/
                               weight.h), and every view's pages leave the RSS after its layer;
                               same output bits, a small part of the memory (no 2.0 GB of copies
                               and packed transforms for SD 1.5), ~8% slower. 0: convert the convs
                               at load but the Winograd convs of the deepest level and of levels 1
                               .. deepest-2, which stream as in low-mem (unet.c: load_conv). The
                               Linears stream from the views in both modes (k_linear_stream: a
                               cache-sized panel of rows widened at a time). Either way the store
                               must stay open until sdc_unet_free. */
    sdc_lora_set *lora;     /* LoRA deltas merged into the conv/linear weights as they are bound
                               (before the Winograd packing; models/weight.h), or NULL. The default
                               mode merges them once into f32 copies of the weights they change
                               (a changed Linear or streamed conv is not streamed); low-mem adds
                               them each time a weight is widened, so the set must outlive the
                               UNet */
    int background;         /* default mode: sdc_unet_load checks the whole graph and allocates every
                               buffer, then converts the weights on a thread of its own and returns at
                               once (the caller encodes the prompt meanwhile). The first forward (or
                               sdc_unet_wait, sdc_unet_free) waits for it; a conversion that fails
                               (out of memory) is that call's error. The store (and the LoRA set)
                               must stay open until then. 0: convert before returning */
    int bf16;               /* 1: the Winograd convs and the Linears (attention projections, feed-
                               forward, proj_in/out; not the time/label embedding) take bf16
                               operands, weights packed once at load (half the memory; LoRA merged
                               first), f32 sums; norms, softmax, attention scores, the residual
                               stream, the time embedding and the other convs stay f32
                               (kernels.h: k_linear_bf16). Not with low_mem. 0: f32, the same bits
                               as before. */
} sdc_unet_params;

typedef struct sdc_unet_info {
    int in_channels, out_channels, model_channels, n_levels, num_res_blocks;
    int channel_mult[8];
    int context_dim, transformer_depth, linear_proj, time_embed_dim;
    int adm_in_channels;    /* SDXL: width of the vector conditioning y (label_emb.0.0's input);
                               0 when the UNet has no label_emb */
    size_t weight_bytes;    /* bytes of weights the model made at load (f32 copies, packed
                               Winograd transforms; low-mem: the norms and biases only) */
    size_t view_bytes;      /* bytes of the store's views the model reads as weights, as stored
                               (the Linears and the streamed Winograd convs; low-mem: every conv
                               and Linear) */
} sdc_unet_info;

typedef struct sdc_unet sdc_unet;

sdc_unet *sdc_unet_load(const sdc_store *st, const sdc_unet_params *p, sdc_err *e);
/* Waits until every weight is bound (a no-op unless params.background left a conversion running).
 * Returns 0, or -1 with e set when the conversion failed (then every later forward fails too).
 * *t_done (may be NULL) receives the CLOCK_MONOTONIC second the conversion finished (0: none ran
 * in the background). */
int sdc_unet_wait(sdc_unet *u, double *t_done, sdc_err *e);
void      sdc_unet_free(sdc_unet *u);
const sdc_unet_info *sdc_unet_get_info(const sdc_unet *u);
/* SHA-256 of the weights exactly as bound: the mode, every f32 and Winograd-packed buffer the
 * forward reads, and the names and stored bytes of the views it streams or widens (with their
 * LoRA deltas). Two bindings that hash alike run the same weights. Reads all of them (seconds at
 * full size). */
void sdc_unet_layout_digest(sdc_unet *u, uint8_t out[32]);   /* waits for a background bind */

/* Debug hook (optional): called during sdc_unet_forward with intermediate activations, named
 * as diffusers names the modules: "time_proj" [N,C], "time_embedding" [N,C] (H = W = 1),
 * "conv_in", "down_blocks.i" (after the level's downsampler), "mid_block", "up_blocks.i"
 * (after the upsampler), "conv_norm_out" (GroupNorm before SiLU) as [N,C,H,W]. data is only
 * valid during the call. fn NULL turns it off. */
typedef void (*sdc_unet_debug_fn)(void *user, const char *name, const float *data,
                                  int N, int C, int H, int W);
void sdc_unet_set_debug(sdc_unet *u, sdc_unet_debug_fn fn, void *user);

/* What the UNet is conditioned on besides the timestep — one struct for every family, as
 * stable-diffusion.cpp's c_crossattn / c_vector / c_concat: a new kind of conditioning is a field
 * here, not a new signature. Pointers are borrowed for the call. */
typedef struct sdc_cond {
    const float *ctx;       /* [N, ctx_len, context_dim] cross-attention context (the text) */
    int          ctx_len;
    const float *y;         /* [N, adm_in_channels] vector conditioning (SDXL's label_emb input:
                               pooled text ++ size embeddings; class labels), or NULL */
    const float *concat;    /* [N, concat_ch, h, w] extra input channels concatenated after x
                               (inpainting: mask 1 + masked-image latents 4), or NULL */
    int          concat_ch;
} sdc_cond;

/* out[N,Cout,h,w] = unet(cat(x[N,Cx,h,w], c->concat), t[N], c) with Cx + c->concat_ch =
 * info.in_channels and Cout = info.out_channels, both read from the file (SD: 4 and 4;
 * inpainting: 4 + 5 in, 4 out; the caller sizes out by out_channels). t may be fractional
 * (Euler linspace). h, w: latent size, any: each downsampler gives ceil(n/2), each upsampler the
 * size of its skip connection. Activations from a (reset by the caller). Returns 0, or -1 with e set. */
int sdc_unet_forward(sdc_unet *u, sdc_arena *a, float *out, const float *x, const float *t,
                     const sdc_cond *c, int N, int h, int w, sdc_err *e);

/* SDXL's vector y[adm] for one image (sgm's conditioner; sdc_cond.y holds one per image): the
 * pooled, projected text vector (n_pooled values) followed by the sinusoidal embeddings (the
 * timestep formula, cos first, max period 10000) of the six size values time_ids = (orig_h,
 * orig_w, crop_top, crop_left, target_h, target_w), each size_dim = (adm - n_pooled) / 6 wide.
 * Returns 0, or -1 with e set when adm - n_pooled is not a positive even multiple of 6. */
int sdc_unet_sdxl_vector(float *y, int adm, const float *pooled, int n_pooled,
                         const float time_ids[6], sdc_err *e);

#endif

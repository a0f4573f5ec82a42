/* taesd.h — TAESD, the tiny autoencoder (diffusers AutoencoderTiny; madebyollin's taesd): a
 * decoder (and encoder) of 3x3 convs and ReLU blocks, ~1.2 M parameters each, for previews and
 * fast decoding of SD latents.
 *
 * Reads two layouts: diffusers' (`decoder.layers.N.*`, `encoder.layers.N.*`, as published) and
 * the standalone files (`taesd_decoder.*`: `N.*` numbered from 1, its layer 0 being the parameter-
 * free clamp; `taesd_encoder.*`: `N.*` numbered from 0). Which layer is what comes from the
 * weights: a Block has `.conv.0/.conv.2/.conv.4` (and `.skip` when its widths differ), a conv
 * without bias downsamples by 2 in the encoder and follows a 2x nearest upsample in the decoder;
 * widths and the latent channels come from the shapes. Owns its f32 (Winograd-packed) weights;
 * the store may be closed after sdc_taesd_load.
 *
 * Scale: TAESD works on the sampler's latents as they are (diffusers' AutoencoderTiny has
 * scaling_factor 1.0; not divided by 0.18215 as for the KL VAE), and on images in [-1, 1]
 * (diffusers' convention; the standalone files' [0, 1] is converted here). */
#ifndef SDC_TAESD_H
#define SDC_TAESD_H

#include "kernels/arena.h"
#include "runtime/err.h"
#include "runtime/store.h"

typedef struct sdc_taesd sdc_taesd;

/* Binds the decoder and/or encoder found in st (at least one). Returns NULL with e set
 * ("taesd: what: where"). */
sdc_taesd *sdc_taesd_load(const sdc_store *st, sdc_err *e);
void       sdc_taesd_free(sdc_taesd *t);      /* NULL is fine */
int        sdc_taesd_has_decoder(const sdc_taesd *t);
int        sdc_taesd_has_encoder(const sdc_taesd *t);
int        sdc_taesd_latent_channels(const sdc_taesd *t);   /* E (4 in SD) */
int        sdc_taesd_downscale(const sdc_taesd *t);         /* f, 2^(resampling steps) (8) */

/* img[N,3,f·h,f·w] = 2·decoder(tanh(z/3)·3) − 1 (AutoencoderTiny.decode(z).sample: about
 * [-1,1], not clamped) for z[N,E,h,w], the latents as the sampler has them. One image at a
 * time; scratch from a (released before return). Returns 0, or -1 with e set. */
int sdc_taesd_decode(sdc_taesd *t, sdc_arena *a, float *img, const float *z, int N, int h, int w,
                     sdc_err *e);

/* lat[N,E,H/f,W/f] = encoder((img + 1)/2) (AutoencoderTiny.encode(img).latents: no sampling, no
 * scaling) for img[N,3,H,W] in [-1,1]; H and W multiples of f. Returns 0, or -1 with e set. */
int sdc_taesd_encode(sdc_taesd *t, sdc_arena *a, float *lat, const float *img, int N, int H, int W,
                     sdc_err *e);

/* Multiply-adds x 2 of one image's decode of h x w latents, counted by the direct method (conv
 * 2·Cout·Cin·k·k·Ho·Wo; ReLU, upsampling and adds not counted): for benchmarks. */
double sdc_taesd_decode_flops(const sdc_taesd *t, int h, int w);

/* Debug tap (tests): when set, the forwards call tap(user, name, x, C, H, W) per image with the
 * output of each layer, named by its diffusers index ("decoder.layers.5", "encoder.layers.13")
 * whatever the file's layout, and "decoder.layers_input" (tanh(z/3)·3). x is valid only
 * during the call. */
typedef void (*sdc_taesd_tap)(void *user, const char *name, const float *x, int C, int H, int W);
void sdc_taesd_set_tap(sdc_taesd *t, sdc_taesd_tap tap, void *user);

#endif

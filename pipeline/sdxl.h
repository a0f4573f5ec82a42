/* sdxl.h — SDXL's text conditioning (sgm's conditioner, as diffusers 0.25.1's
 * StableDiffusionXLPipeline.encode_prompt computes it): two text towers from one file
 * (conditioner.embedders.0: CLIP ViT-L, conditioner.embedders.1: OpenCLIP ViT-bigG with its
 * text_projection), each window of 77 ids encoded by both, their penultimate layers without the
 * final LayerNorm concatenated to the context (768 + 1280 = 2048 in SDXL), and the vector
 * conditioning y = pooled text vector ++ Fourier embeddings of the size/crop/target time ids.
 *
 * Owns: the two towers (models/clip.h). Does not own: the store (the towers read their matrices
 * from it per layer: it must stay open until sdc_sdxl_text_free). */
#ifndef SDC_SDXL_H
#define SDC_SDXL_H

#include "kernels/arena.h"
#include "models/clip.h"
#include "runtime/err.h"
#include "runtime/store.h"

#define SDC_SDXL_TE1 "conditioner.embedders.0.transformer.text_model."
#define SDC_SDXL_TE2 "conditioner.embedders.1.model."

typedef struct sdc_sdxl_text {
    sdc_clip *te1, *te2;
    int C1, C2, P;            /* widths of tower 1, tower 2, the pooled vector */
} sdc_sdxl_text;

/* Binds both towers of an SDXL file (lora: merged as they bind, or NULL). heads / act per tower: <= 0 / < 0 for CLIP's conventions
 * (head width 64; quick_gelu for tower 1, gelu for tower 2). A refiner's single-tower
 * conditioner (conditioner.embedders.0.model.*) is refused in one line. Returns 0, or -1 with
 * e set. */
int  sdc_sdxl_text_load(sdc_sdxl_text *t, const sdc_store *st, int heads1, int act1, int heads2,
                        int act2, sdc_lora_set *lora, sdc_err *e);
void sdc_sdxl_text_free(sdc_sdxl_text *t);

/* One prompt's conditioning: ctx[nw*77, C1+C2] = both towers' penultimate states side by side,
 * window k from ids1[k*77..] (tokenizer 1: padded with EOS) and ids2[k*77..] (tokenizer 2:
 * padded with 0); pooled[P] from the first window (tower 2's ln_final at the first EOS @
 * text_projection). weights: NULL, or [nw*77] AUTOMATIC1111 emphasis weights, applied to each
 * tower's states on its own ("Original" emphasis, as A1111 does per SDXL embedder). clip_skip:
 * <= 2 is SDXL's penultimate layer; k > 2 reaches further back in both towers. Activations
 * from a (reset before returning). Returns 0, or -1 with e set. */
int  sdc_sdxl_encode(sdc_sdxl_text *t, sdc_arena *a, const int32_t *ids1, const int32_t *ids2,
                     const double *weights, int nw, int clip_skip, float *ctx, float *pooled, sdc_err *e);

/* SDXL's six time ids, height first as diffusers orders them: (orig_h, orig_w, crop_top,
 * crop_left, target_h, target_w). orig = size_cond (W, H), crop = crop_cond (X, Y) = (left,
 * top), target = the output size. */
void sdc_sdxl_time_ids(float ids[6], int size_w, int size_h, int crop_x, int crop_y, int out_w,
                       int out_h);

#endif

/* clip.h — the text encoders: SD 1.x CLIP ViT-L/14 (transformers layout under
 * cond_stage_model.transformer.text_model.*), SD 2.x OpenCLIP ViT-H (cond_stage_model.model.*,
 * fused in_proj) and SDXL's two (conditioner.embedders.0.transformer.text_model.* CLIP ViT-L,
 * conditioner.embedders.1.model.* OpenCLIP ViT-bigG with its text_projection), one code. Widths, depth and vocabulary come from the weights; what they cannot tell
 * (heads, activation) comes from the caller. Owns its f32 weights (converted once at load; in
 * low-mem mode only the norms, biases and position table). */
#ifndef SDC_CLIP_H
#define SDC_CLIP_H

#include "kernels/arena.h"
#include "runtime/err.h"
#include "runtime/lora.h"
#include "runtime/store.h"

typedef enum { SDC_ACT_QUICK_GELU = 0, SDC_ACT_GELU = 1 } sdc_text_act;

typedef struct sdc_clip_params {
    int n_heads;          /* attention heads; <= 0: width / 64 (CLIP's head width) */
    int act;              /* sdc_text_act; < 0: quick_gelu for SD 1.x layout, gelu for OpenCLIP */
    int low_mem;          /* 1: keep no f32 copy of the token table either (widened per id) and
                             drop the matrices' pages from the RSS after each layer (models/
                             weight.h); same output bits. 0: the token table converted at load.
                             The layers' matrices are the store's views in both modes (streamed
                             by each Linear), so the store must stay open until sdc_clip_free. */
    const char *prefix;   /* NULL: search the SD 1.x/2.x prefixes; else the tower's own prefix
                             (e.g. "conditioner.embedders.1.model."), either layout under it */
    int projection;       /* 1: also bind the OpenCLIP text_projection [C, P] (SDXL's pooled
                             vector; required then) */
    sdc_lora_set *lora;   /* LoRA deltas added to the matrices' rows as they are widened (models/
                             weight.h), or NULL; must outlive the encoder */
} sdc_clip_params;

typedef struct sdc_clip sdc_clip;

/* Binds the text encoder found in st (either layout; prefix "" is searched for
 * cond_stage_model.transformer.text_model.* then cond_stage_model.model.*).
 * Returns NULL with e set when st has no text encoder or a weight has the wrong shape. */
sdc_clip *sdc_clip_load(const sdc_store *st, const sdc_clip_params *p, sdc_err *e);
void      sdc_clip_free(sdc_clip *c);

int sdc_clip_width(const sdc_clip *c);    /* context width C (768 SD 1.x, 1024 SD 2.x) */
int sdc_clip_layers(const sdc_clip *c);
int sdc_clip_is_openclip(const sdc_clip *c);  /* 1 for the SD 2.x tower (pad with 0, penultimate) */

/* out[77,C] = conditioning for one window of 77 ids.
 * clip_skip as AUTOMATIC1111 defines it: 1 (or <= 1) = last layer for SD 1.x; k = output of
 * layer (L - k + 1); the final layer norm is always applied. SD 2.x's OpenCLIP tower uses the
 * penultimate layer by default (clip_skip <= 1 means "penultimate" there), as SD 2.x does;
 * k >= 2 counts as for SD 1.x there too (2 = penultimate as well, 3 = the layer before).
 * Returns 0, or -1 with e set. */
int sdc_clip_encode(sdc_clip *c, sdc_arena *a, const int32_t *ids, int n_ids, int clip_skip,
                    float *out, sdc_err *e);

/* What sdc_clip_encode_ex computes. */
typedef struct sdc_clip_encode_opts {
    int    clip_skip;     /* as sdc_clip_encode */
    int    no_final_norm; /* 1: the chosen layer's output as it is (SDXL's conditioning: the
                             penultimate layer without the final LayerNorm); 0: through it */
    float *pooled;        /* NULL, or [sdc_clip_proj_dim]: final_ln(last layer)[eos] @
                             text_projection, eos = the first position of the largest id (the
                             first EOS); runs every layer. Needs params.projection. */
    const float *const *vecs; /* NULL, or n_ids pointers: a non-NULL one is a vector [C] that
                             replaces that position's token embedding (textual inversion; the id
                             there is then not read) */
} sdc_clip_encode_opts;

/* out[77,C] as sdc_clip_encode, with the options above. Returns 0, or -1 with e set. */
int sdc_clip_encode_ex(sdc_clip *c, sdc_arena *a, const int32_t *ids, int n_ids,
                       const sdc_clip_encode_opts *o, float *out, sdc_err *e);

/* Width of the pooled, projected vector (text_projection's columns); 0 without one. */
int sdc_clip_proj_dim(const sdc_clip *c);

/* Sizes read from the weights: positions per window (77) and vocabulary (49408). */
int sdc_clip_positions(const sdc_clip *c);
int sdc_clip_vocab(const sdc_clip *c);
/* Bytes of f32 weights the encoder holds (low-mem: the norms, biases and position table). */
size_t sdc_clip_weight_bytes(const sdc_clip *c);

/* Debug tap (tests, tracing): when set, sdc_clip_encode calls tap(user, i, x, n, C) with
 * hidden_states.i — i = 0: token + position embeddings, i >= 1: output of layer i, before
 * the final layer norm. x is only valid during the call. NULL turns it off. */
typedef void (*sdc_clip_tap)(void *user, int i, const float *x, int n, int C);
void sdc_clip_set_tap(sdc_clip *c, sdc_clip_tap tap, void *user);

#endif

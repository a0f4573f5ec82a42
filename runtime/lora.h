/* lora.h — LoRA files read and mapped onto a model's weights (bottom layer: strings, the store).
 *
 * Owns: a set of deltas (sdc_lora_set), one per LoRA module: the module's factors widened to f32
 * (up [rows, rank], down [rank, cols]), its scale multiplier · alpha / rank, and the name of the
 * model weight it changes (original single-file layout) with the rows it covers. The LoRA file
 * itself is read through the tensor store (sdc_store_open: the same validation, the same pickle
 * allowlist) and closed again once its factors are copied.
 * Does not own: the model's store (read for its names only) or any merged weight: the merge
 * W' = W + scale · up @ down happens in the models' weight binder (models/weight.h) as weights
 * are bound.
 *
 * Formats read: kohya (`lora_unet_*`, `lora_te_*`, `lora_te1_*`/`lora_te2_*` with
 * `.lora_down.weight`, `.lora_up.weight`, optional `.alpha`; linear, 1x1 and 3x3 convs, i.e.
 * LoCon too), diffusers (`unet.…`, `text_encoder.…` with `.lora.down/up.weight`,
 * `.lora_linear_layer.down/up.weight`, `_lora.down/up.weight`) and PEFT (`.lora_A/.lora_B.weight`).
 * Module paths may be diffusers paths (`down_blocks_0_attentions_0_…`) or original ones
 * (`input_blocks_1_1_…`, as SDXL kohya files write them). Refused, with one line naming what
 * they are: LoHa, LoKr, (IA)^3, OFT, GLoRA, DoRA, CP-decomposed LoCon (`lora_mid`), full-weight
 * differences, and any tensor that is none of the above. */
#ifndef SDC_LORA_H
#define SDC_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/err.h"
#include "runtime/store.h"

/* A LoRA module holds at most this rank: far above the 4..256 people train, and it bounds the
 * factor copies a hostile file can ask for. */
#define SDC_LORA_MAX_RANK 4096

/* One module's delta on one model weight. */
typedef struct sdc_lora_mod {
    const char *file;            /* the LoRA file it came from (owned by the set) */
    const char *name;            /* module name as the file spells it (owned by the set) */
    const char *target;          /* the model weight it changes, original layout (owned) */
    int64_t row0, rows;          /* the rows [row0, row0 + rows) of target it changes: all of
                                    them, or q/k/v inside a fused in_proj_weight */
    int64_t cols;                /* target's elements per row (in · kh · kw) */
    int     rank;
    float   scale;               /* multiplier · alpha / rank (alpha = rank when absent) */
    const float *up;             /* [rows, rank] f32 */
    const float *down;           /* [rank, cols] f32 */
    const struct sdc_lora_mod *next;   /* the next delta on the same target (an other LoRA or
                                          an other part of a fused weight), or NULL */
    int     used;                /* set by sdc_lora_find: a model bound it */
} sdc_lora_mod;

typedef struct sdc_lora_set sdc_lora_set;

sdc_lora_set *sdc_lora_set_new(void);
void          sdc_lora_set_free(sdc_lora_set *s);   /* NULL is fine */

/* Reads the LoRA file at path (opts as for any model file; NULL: defaults) and adds every
 * module as a delta on the weight of `model` it names, scaled by mult. Several files add up
 * (their deltas are summed, in the order added). Returns 0, or -1 with e set and the set
 * unchanged: unreadable or malformed file, a format sdc does not merge (named), up/down ranks
 * that disagree, a module that matches no weight of the model, a delta whose shape does not
 * fit its weight. */
int sdc_lora_set_add(sdc_lora_set *s, const sdc_store *model, const char *path, float mult,
                     const sdc_load_opts *opts, sdc_err *e);

/* The deltas on the weight named target (chained by ->next, in the order added), or NULL.
 * Marks them used. */
const sdc_lora_mod *sdc_lora_find(sdc_lora_set *s, const char *target);

/* 0 when every module was bound by a model (sdc_lora_find), else -1 with e naming the first
 * one that was not (a weight the models do not read). */
int sdc_lora_check_used(const sdc_lora_set *s, sdc_err *e);

size_t sdc_lora_set_count(const sdc_lora_set *s);     /* modules */
const sdc_lora_mod *sdc_lora_set_at(const sdc_lora_set *s, size_t i);   /* in the order added */
size_t sdc_lora_set_bytes(const sdc_lora_set *s);     /* bytes of f32 factors held */
size_t sdc_lora_set_files(const sdc_lora_set *s);     /* files added */

/* ── describing a LoRA file (sdc inspect) ── */

typedef struct sdc_lora_info {
    char   format[64];           /* "kohya LoRA", "kohya LoCon", "diffusers LoRA", "PEFT LoRA" */
    int    n_modules, n_unet, n_te1, n_te2;
    int    n_linear, n_conv1x1, n_conv3x3;
    int    rank_min, rank_max;
    int    has_alpha;            /* some module carries alpha */
    double alpha_min, alpha_max;
    int    context_dim;          /* in-width of the UNet's cross-attention k/v, 0 if none */
    int    te_width;             /* text encoder width seen in its q_proj (te1), 0 if none */
    char   family[160];          /* which model family it fits, and why */
} sdc_lora_info;

/* 1 when the store's tensors look like a LoRA (or a LyCORIS kind sdc refuses), else 0. */
int sdc_lora_detect(const sdc_store *st);

/* Reads what the LoRA in st is. Returns 0, or -1 with e set (the same refusals as
 * sdc_lora_set_add, except the match against a model). */
int sdc_lora_describe(const sdc_store *st, sdc_lora_info *info, sdc_err *e);

/* ── name maps (runtime/lora_names.c) ── */

/* The candidates, in the order to try, for a LoRA's UNet module path in underscore form
 * (`down_blocks_0_attentions_0_proj_in`, or already original `input_blocks_1_1_proj_in`), as
 * original-layout paths in underscore form without `model.diffusion_model.`. R is the number of
 * ResBlocks per UNet level. Writes up to 3 into out; returns the count (0: no candidate). */
int sdc_lora_unet_candidates(const char *path, int R, char out[][512], int max);

#endif

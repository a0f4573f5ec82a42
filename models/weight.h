/* weight.h — a big model weight (a conv or linear matrix) as the kernels read it: f32.
 *
 * Two ways to hold one, chosen per model at load:
 *  - default: an f32 copy converted once at load (w->f; owned by the model, which allocates
 *    and frees it); the store is not read again.
 *  - low-mem: no copy. The weight is the store's views (f16/bf16/f32 as on disk, possibly
 *    unaligned: legacy ckpt records) whose values, back to back, make it (one tensor, or q|k|v
 *    fused as one GEMM). sdc_weight_f32 widens them just in time into scratch from the forward's
 *    arena, which the caller releases (sdc_arena_reset) right after the layer, and then drops
 *    their file pages from the RSS again, so only the layer at work is resident.
 * Either way the kernels get the same floats (the same element conversion), so both modes give
 * the same bits. Does not own: the views (the store's; in low-mem mode the store must stay open
 * until the model is freed). */
#ifndef SDC_WEIGHT_H
#define SDC_WEIGHT_H

#include <stddef.h>

#include "kernels/arena.h"
#include "runtime/store.h"

#define SDC_WEIGHT_MAX_PARTS 3   /* q|k|v: the most tensors any model fuses into one GEMM */

typedef struct sdc_weight {
    const float      *f;                            /* the f32 copy; NULL in low-mem mode */
    const sdc_tensor *src[SDC_WEIGHT_MAX_PARTS];    /* low-mem: the views, in order */
    int               nsrc;
    const sdc_store  *st;                           /* low-mem: the store the views live in */
    size_t            n;                            /* floats in all; 0: no such weight */
} sdc_weight;

/* Low-mem binding: w becomes the n (1..SDC_WEIGHT_MAX_PARTS) views t of store st, each already
 * checked by the model to be a float tensor of the shape it needs. */
void sdc_weight_set_views(sdc_weight *w, const sdc_store *st, const sdc_tensor *const *t, int n);

/* The f32 values of w [w->n]: w->f, or (low-mem) the views widened into fresh scratch from a
 * (freed by the caller's sdc_arena_reset), after which their pages are dropped from the process
 * (sdc_store_release_tensor). NULL when the arena cannot grow. */
const float *sdc_weight_f32(const sdc_weight *w, sdc_arena *a);

/* dst[count] = elements [first, first + count) of float tensor t as f32: the same values as
 * sdc_tensor_to_f32 of the whole tensor. t must be a float dtype (sdc_dtype_is_float) and the
 * range inside it. Returns 0, or -1 when it is not. One thread: widening is bound by memory
 * bandwidth (SD 1.5's 819 M UNet weights: 0.65 s on one core here, slower on two, where every
 * OpenMP fork/join on a busy machine costs more than it saves). */
int sdc_weight_widen(float *dst, const sdc_tensor *t, size_t first, size_t count);

#endif

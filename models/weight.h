/* weight.h — a big model weight (a conv or linear matrix) as the kernels read it: f32.
 *
 * Two ways to hold one, chosen per weight at load:
 *  - an f32 copy converted once at load (w->f; owned by the model, which allocates and frees
 *    it); the store is not read again. The UNet's convs that are not streamed, its Linears that
 *    a LoRA changes (default mode), and the VAE's weights are held this way.
 *  - no copy: the weight is the store's views (f16/bf16/f32 as on disk, possibly unaligned:
 *    legacy ckpt records) whose values, back to back, make it (one tensor, or q|k|v fused as one
 *    GEMM). A Linear reads them a panel of rows at a time (sdc_weight_linear: k_linear_stream
 *    widens each panel into cache-sized scratch right before its products), so its f32 form is
 *    never whole in memory; other users widen them whole, just in time, into scratch from the
 *    forward's arena (sdc_weight_f32), which the caller releases right after the layer. With
 *    keep = 0 (low-mem mode) their file pages leave the RSS again after each use, so only the
 *    layer at work is resident; with keep = 1 (the UNet's Linears and streamed convs in the
 *    default mode) they stay mapped: the file's pages are the weight, bound at load without a
 *    copy.
 * Either way the kernels get the same floats (the same element conversion). Does not own: the
 * views (the store's; the store must stay open until the model is freed).
 *
 * LoRA: a weight with deltas (runtime/lora.h: W' = W + scale · up @ down on some of its rows)
 * gets them added right where it is widened, before anything else sees it (the Winograd packing
 * included): once at load into the f32 copy (sdc_weight_load_f32), or for views each time rows
 * are widened (sdc_weight_f32, sdc_weight_rows), keeping only the f32 factors (the set's). Both
 * ways give the same bits: every row of a delta is computed by the same loop (fixed order over
 * the rank), whichever rows are asked for. */
#ifndef SDC_WEIGHT_H
#define SDC_WEIGHT_H

#include <stddef.h>

#include "kernels/arena.h"
#include "runtime/lora.h"
#include "runtime/store.h"

#define SDC_WEIGHT_MAX_PARTS 3   /* q|k|v: the most tensors any model fuses into one GEMM */

typedef struct sdc_weight {
    const float      *f;                            /* the f32 copy; NULL in low-mem mode */
    const sdc_tensor *src[SDC_WEIGHT_MAX_PARTS];    /* views: the views, in order */
    int               nsrc;
    const sdc_lora_mod *delta[SDC_WEIGHT_MAX_PARTS]; /* views: each view's LoRA deltas, or NULL */
    const sdc_store  *st;                           /* views: the store they live in */
    size_t            n;                            /* floats in all; 0: no such weight */
    size_t            cols;                         /* floats per row (the same in every view) */
    int               keep;                         /* views: 1 keeps their pages mapped after use */
} sdc_weight;

/* Floats per row of a weight tensor viewed as [shape[0], numel / shape[0]] (0 for no rows). */
static inline size_t sdc_weight_row_floats(const sdc_tensor *t) {
    return t->ndim >= 1 && t->shape[0] > 0 ? (size_t)t->numel / (size_t)t->shape[0] : 0;
}

/* View binding: w becomes the n (1..SDC_WEIGHT_MAX_PARTS) views t of store st, each already
 * checked by the model to be a float tensor of the shape it needs. */
void sdc_weight_set_views(sdc_weight *w, const sdc_store *st, const sdc_tensor *const *t, int n);

/* The f32 values of w [w->n]: w->f, or the views widened into fresh scratch from a (freed by
 * the caller's sdc_arena_reset) on all threads when big (outside a parallel region), their LoRA
 * deltas added, after which (keep = 0) their pages are dropped from the process
 * (sdc_store_release_tensor). NULL when out of memory. */
const float *sdc_weight_f32(const sdc_weight *w, sdc_arena *a);

/* dst[nr * w->cols] = rows [r0, r0 + nr) of w as f32 (across the views when fused), LoRA deltas
 * added: the same values as those rows of sdc_weight_f32. Any thread. Returns 0, or -1 when the
 * rows are outside w or out of memory. */
int sdc_weight_rows(const sdc_weight *w, float *dst, size_t r0, size_t nr);

/* The views' pages leave the RSS (sdc_store_release_tensor) when w is views with keep = 0. */
void sdc_weight_release(const sdc_weight *w);

/* torch.nn.Linear with w [N, K]: out[M, N] = (out +, when acc) in[M, K] · wᵀ + b[N] (b may be
 * NULL; added before the products), by k_linear_stream from views or the f32 copy alike (so a
 * LoRA merged into a copy gives the same bits as its deltas added per panel), then
 * sdc_weight_release. Returns 1, or 0 when the arena cannot give the scratch or out of memory. */
int sdc_weight_linear(sdc_arena *a, float *out, const float *in, const sdc_weight *w, const float *b, int M,
                      int K, int N, int acc);

/* dst[count] = elements [first, first + count) of float tensor t as f32: the same values as
 * sdc_tensor_to_f32 of the whole tensor. t must be a float dtype (sdc_dtype_is_float) and the
 * range inside it. Returns 0, or -1 when it is not. One thread (sdc_weight_f32 splits a big
 * weight over the threads: each element's conversion is its own, so the bits do not depend on
 * the split). */
int sdc_weight_widen(float *dst, const sdc_tensor *t, size_t first, size_t count);

/* ---- the one weight binder: every model binds its big matrices (convs, linears) here ----
 * The matrix is made of the n checked float views t (1..SDC_WEIGHT_MAX_PARTS, stacked by rows:
 * q|k|v; each viewed as [shape[0], numel / shape[0]], the same row width in all). dst NULL: w
 * becomes the views (keep = 0; a model that keeps them mapped sets keep), with lora's deltas for
 * each, widened (and merged) per use. dst non-NULL: dst[sdc_weight_count(t, n)] (owned by the
 * model) receives the f32 copy now, lora's deltas merged, and each view's file pages leave the
 * RSS; w->f = dst. Layouts built from the f32 copy (the UNet's Winograd packing, bf16) start
 * from it, so a delta is always merged before any packing. (The UNet queues the same per-tensor
 * conversion, sdc_weight_load_f32, as jobs over its threads.) Returns 0, or -1 with e set
 * ("NAME: why"). */
size_t sdc_weight_count(const sdc_tensor *const *t, int n);
int    sdc_weight_bind(sdc_weight *w, float *dst, const sdc_store *st, const sdc_tensor *const *t,
                       int n, sdc_lora_set *lora, sdc_err *e);

/* The LoRA deltas on tensor t (looked up by its name in lora, which marks them used), or NULL
 * when lora is NULL or has none for t. Every binder asks this for each conv/linear weight. */
const sdc_lora_mod *sdc_weight_deltas(sdc_lora_set *lora, const sdc_tensor *t);

/* View binding with LoRA: sdc_weight_set_views, then each view's deltas from lora (NULL: none). */
void sdc_weight_set_views_lora(sdc_weight *w, const sdc_store *st, const sdc_tensor *const *t, int n,
                               sdc_lora_set *lora);

/* dst[rows(t) * cols] = float tensor t as f32 (rows = t->shape[0]) plus its deltas d (NULL:
 * none): the one conversion of a whole weight at load. Returns 0, or -1 with e set. */
int sdc_weight_load_f32(float *dst, const sdc_tensor *t, const sdc_lora_mod *d, sdc_err *e);

/* dst[nr * cols] = rows [r0, r0 + nr) of float tensor t (viewed as [t->shape[0], cols]) as f32
 * plus the same rows of its deltas d: the same values as those rows of sdc_weight_load_f32.
 * Returns 0, or -1 when t is not float, the rows are outside it, or out of memory. */
int sdc_weight_widen_rows(float *dst, const sdc_tensor *t, const sdc_lora_mod *d, size_t r0, size_t nr);

/* dst[nr * cols] += rows [r0, r0 + nr) of every delta in the chain d (rows of the weight they
 * change; the parts of a delta outside those rows are skipped). Threads over rows when large.
 * Returns 0, or -1 when out of memory (dst then partly changed). */
int sdc_weight_add_deltas(float *dst, const sdc_lora_mod *d, size_t r0, size_t nr, size_t cols);

#endif

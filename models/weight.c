/* weight.c — big model weights as f32: the load-time copy, or the store's views widened just in
 * time, whole or a panel of rows at a time. See weight.h. */
#include "models/weight.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

void sdc_weight_set_views(sdc_weight *w, const sdc_store *st, const sdc_tensor *const *t, int n) {
    memset(w, 0, sizeof *w);
    w->st = st;
    for (int i = 0; i < n && i < SDC_WEIGHT_MAX_PARTS; i++) {
        w->src[w->nsrc++] = t[i];
        w->n += (size_t)t[i]->numel;
    }
    if (w->nsrc) w->cols = sdc_weight_row_floats(w->src[0]);
}

void sdc_weight_release(const sdc_weight *w) {
    if (w->f || w->keep) return;
    for (int i = 0; i < w->nsrc; i++) sdc_store_release_tensor(w->st, w->src[i]);
}

int sdc_weight_rows(const sdc_weight *w, float *dst, size_t r0, size_t nr) {
    if (!w->cols || r0 > w->n / w->cols || nr > w->n / w->cols - r0) return -1;
    if (w->f) {
        memcpy(dst, w->f + r0 * w->cols, nr * w->cols * sizeof(float));
        return 0;
    }
    size_t first = 0;   /* the first row of view i */
    for (int i = 0; i < w->nsrc && nr; i++) {
        const sdc_tensor *t = w->src[i];
        const size_t rows = (size_t)t->shape[0];
        if (r0 < first + rows) {   /* rows r0 .. of this view */
            size_t k = first + rows - r0 < nr ? first + rows - r0 : nr;
            if (sdc_weight_widen_rows(dst, t, w->delta[i], r0 - first, k)) return -1;
            dst += k * w->cols;
            r0 += k;
            nr -= k;
        }
        first += rows;
    }
    return nr ? -1 : 0;
}

static int rows_cb(void *ctx, float *dst, int r0, int nr) {
    return sdc_weight_rows(ctx, dst, (size_t)r0, (size_t)nr);
}

int sdc_weight_linear(sdc_arena *a, float *out, const float *in, const sdc_weight *w, const float *b, int M,
                      int K, int N, int acc) {
    int ok = k_linear_stream(a, out, in, rows_cb, (void *)w, b, M, K, N, acc);
    sdc_weight_release(w);
    return ok;
}

int sdc_weight_widen(float *dst, const sdc_tensor *t, size_t first, size_t count) {
    if (!t || !sdc_dtype_is_float(t->dtype) || t->numel < 0 || first > (size_t)t->numel ||
        count > (size_t)t->numel - first)
        return -1;
    size_t es = sdc_dtype_size(t->dtype);
    sdc_tensor s = *t;                    /* the range as a tensor of its own, for the store */
    s.data = (const uint8_t *)t->data + first * es;
    s.ndim = 1;
    s.shape[0] = (int64_t)count;
    s.numel = (int64_t)count;
    s.nbytes = count * es;
    sdc_err e;
    return sdc_tensor_to_f32(&s, dst, &e);
}

/* Elements per piece when a view is widened on all threads: 1 MiB of f32, big enough that a
 * fork/join is cheap beside it (the UNet's big matrices are 1.6-15 M elements). */
#define WIDEN_PIECE ((size_t)1 << 18)

const float *sdc_weight_f32(const sdc_weight *w, sdc_arena *a) {
    if (w->f) return w->f;
    float *d = sdc_arena_f32(a, w->n ? w->n : 1);
    if (!d) return NULL;
    size_t o = 0;
    for (int i = 0; i < w->nsrc; i++) {
        const sdc_tensor *t = w->src[i];
        const size_t n = (size_t)t->numel;
        /* cannot fail: the model checked each view's dtype at load, and every range is inside */
        const long pieces = (long)((n + WIDEN_PIECE - 1) / WIDEN_PIECE);
        #pragma omp parallel for schedule(static) if (pieces > 1 && !omp_in_parallel())
        for (long k = 0; k < pieces; k++) {
            const size_t a = (size_t)k * WIDEN_PIECE;
            sdc_weight_widen(d + o + a, t, a, n - a < WIDEN_PIECE ? n - a : WIDEN_PIECE);
        }
        if (w->delta[i] && t->ndim >= 1 && t->shape[0] > 0 &&
            sdc_weight_add_deltas(d + o, w->delta[i], 0, (size_t)t->shape[0], n / (size_t)t->shape[0]))
            return NULL;
        o += n;
    }
    sdc_weight_release(w);
    return d;
}

const sdc_lora_mod *sdc_weight_deltas(sdc_lora_set *lora, const sdc_tensor *t) {
    return lora && t ? sdc_lora_find(lora, t->name) : NULL;
}

void sdc_weight_set_views_lora(sdc_weight *w, const sdc_store *st, const sdc_tensor *const *t, int n,
                               sdc_lora_set *lora) {
    sdc_weight_set_views(w, st, t, n);
    for (int i = 0; i < w->nsrc; i++) w->delta[i] = sdc_weight_deltas(lora, t[i]);
}

size_t sdc_weight_count(const sdc_tensor *const *t, int n) {
    size_t total = 0;   /* cannot overflow: each view lies inside the mapped file */
    for (int i = 0; i < n; i++) total += (size_t)t[i]->numel;
    return total;
}

int sdc_weight_bind(sdc_weight *w, float *dst, const sdc_store *st, const sdc_tensor *const *t,
                    int n, sdc_lora_set *lora, sdc_err *e) {
    if (!dst) {
        sdc_weight_set_views_lora(w, st, t, n, lora);
        return 0;
    }
    *w = (sdc_weight){.f = dst, .n = sdc_weight_count(t, n), .cols = n > 0 ? sdc_weight_row_floats(t[0]) : 0};
    for (int i = 0; i < n; i++) {
        int rc = sdc_weight_load_f32(dst, t[i], sdc_weight_deltas(lora, t[i]), e);
        sdc_store_release_tensor(st, t[i]);
        if (rc) return sdc_err_prefix(e, "%s", t[i]->name);
        dst += t[i]->numel;
    }
    return 0;
}

/* Work (rows · cols · rank multiply-adds) above which a delta is spread over the threads. */
#define DELTA_PAR_WORK ((size_t)1 << 22)

/* 64 columns of a delta row are summed at once in four 16-float vectors that stay in registers
 * while the rank is walked: each multiply-add loads one value of down and nothing else. */
#define DELTA_COLS 64
typedef float v16f __attribute__((vector_size(64)));

/* o[n] += scale · (u[rank] @ down[rank, n]) (down's rows cols apart), n <= DELTA_COLS. Every
 * element is a = 0; a += u[k]·down[k] for k = 0, 1, ...; o += scale·a: the same operations in the
 * same order in the vector and the scalar loop, so a row has the same bits whichever rows are
 * computed with it and on however many threads. */
static void delta_cols(float *o, const float *u, const float *down, int rank, size_t cols, size_t n,
                       float scale) {
    if (n == DELTA_COLS) {
        v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, d0, d1, d2, d3, o0, o1, o2, o3;
        for (int k = 0; k < rank; k++) {
            const float *dk = down + (size_t)k * cols;
            memcpy(&d0, dk, 64); memcpy(&d1, dk + 16, 64); memcpy(&d2, dk + 32, 64); memcpy(&d3, dk + 48, 64);
            a0 += u[k] * d0; a1 += u[k] * d1; a2 += u[k] * d2; a3 += u[k] * d3;
        }
        memcpy(&o0, o, 64); memcpy(&o1, o + 16, 64); memcpy(&o2, o + 32, 64); memcpy(&o3, o + 48, 64);
        o0 += scale * a0; o1 += scale * a1; o2 += scale * a2; o3 += scale * a3;
        memcpy(o, &o0, 64); memcpy(o + 16, &o1, 64); memcpy(o + 32, &o2, 64); memcpy(o + 48, &o3, 64);
        return;
    }
    float a[DELTA_COLS] = {0};
    for (int k = 0; k < rank; k++) {
        const float uk = u[k], *dk = down + (size_t)k * cols;
        for (size_t j = 0; j < n; j++) a[j] += uk * dk[j];
    }
    for (size_t j = 0; j < n; j++) o[j] += scale * a[j];
}

/* One row of a delta: o[cols] += scale · (u[rank] @ down[rank, cols]). */
static void delta_row(float *o, const float *u, const float *down, int rank, size_t cols, float scale) {
    size_t j = 0;
    for (; j + DELTA_COLS <= cols; j += DELTA_COLS)
        delta_cols(o + j, u, down + j, rank, cols, DELTA_COLS, scale);
    if (j < cols) delta_cols(o + j, u, down + j, rank, cols, cols - j, scale);
}

int sdc_weight_add_deltas(float *dst, const sdc_lora_mod *d, size_t r0, size_t nr, size_t cols) {
    for (; d; d = d->next) {
        if ((size_t)d->cols != cols) continue;   /* cannot happen: the set checked the shapes */
        size_t a = (size_t)d->row0 > r0 ? (size_t)d->row0 : r0;
        size_t b = (size_t)(d->row0 + d->rows) < r0 + nr ? (size_t)(d->row0 + d->rows) : r0 + nr;
        if (a >= b) continue;
        long n = (long)(b - a);
        int par = (size_t)n * cols * (size_t)d->rank > DELTA_PAR_WORK && !omp_in_parallel();
        #pragma omp parallel for schedule(static) if (par)
        for (long i = 0; i < n; i++) {
            size_t row = a + (size_t)i;
            delta_row(dst + (row - r0) * cols, d->up + (row - (size_t)d->row0) * (size_t)d->rank, d->down,
                      d->rank, cols, d->scale);
        }
    }
    return 0;
}

int sdc_weight_load_f32(float *dst, const sdc_tensor *t, const sdc_lora_mod *d, sdc_err *e) {
    if (sdc_tensor_to_f32(t, dst, e)) return -1;
    if (d && t->ndim >= 1 && t->shape[0] > 0 &&
        sdc_weight_add_deltas(dst, d, 0, (size_t)t->shape[0], (size_t)t->numel / (size_t)t->shape[0]))
        return sdc_errf(e, "%s: out of memory merging its LoRA", t->name);
    return 0;
}

int sdc_weight_widen_rows(float *dst, const sdc_tensor *t, const sdc_lora_mod *d, size_t r0, size_t nr) {
    if (!t || t->ndim < 1 || t->shape[0] <= 0 || r0 > (size_t)t->shape[0] || nr > (size_t)t->shape[0] - r0)
        return -1;
    size_t cols = (size_t)t->numel / (size_t)t->shape[0];
    if (sdc_weight_widen(dst, t, r0 * cols, nr * cols)) return -1;
    return d ? sdc_weight_add_deltas(dst, d, r0, nr, cols) : 0;
}

/* attention.c — k_attention: softmax(q·kᵀ/√D [+ causal]) · v per (batch, head, query tile), with
 * the score tile in arena scratch (one per thread) and both products by sgemm. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "kernels/kernels_internal.h"

/* A score tile holds at most this many floats (1 MiB: stays in L2 while softmax and ·v read it);
 * the query tile is ATT_TILE_FLOATS / Lk rows, within [ATT_MIN_ROWS, ATT_MAX_ROWS]. */
#define ATT_TILE_FLOATS ((size_t)256 << 10)
#define ATT_MIN_ROWS 16
#define ATT_MAX_ROWS 256

/* One (b, h, query rows i0..i1-1) task. Causal: query i sees keys j <= i (top-left aligned, as
 * torch's scaled_dot_product_attention(is_causal=True) does when Lq != Lk). */
static void att_tile(float *S, float *out, const float *q, int ldq, const float *k, int ldk,
                     const float *v, int ldv, int Lk, int HD, int D, int i0, int i1, int causal) {
    int tq = i1 - i0;
    float scale = 1.0f / sqrtf((float)D);
    /* S[tq, Lk] = scale · q[i0:i1, D] · k[Lk, D]ᵀ */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, Lk, D, scale, q + (size_t)i0 * ldq, ldq,
                k, ldk, 0.0f, S, Lk);
    for (int r = 0; r < tq; r++) {
        float *s = S + (size_t)r * Lk;
        if (causal)
            for (int j = i0 + r + 1; j < Lk; j++) s[j] = -INFINITY;
        kint_softmax_row(s, Lk);
    }
    /* out[i0:i1, D] = S[tq, Lk] · v[Lk, D] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, D, Lk, 1.0f, S, Lk, v, ldv, 0.0f,
                out + (size_t)i0 * HD, HD);
}

/* Without scratch: per query row, pass 1 finds max and sum of the scores, pass 2 accumulates
 * p_j · v_j straight into out. Slow (scores computed twice) but needs no memory. */
static void att_rows_noscratch(float *out, const float *q, int ldq, const float *k, int ldk,
                               const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal) {
    float scale = 1.0f / sqrtf((float)D);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Lq; i++) {
                const float *qi = q + ((size_t)b * Lq + i) * ldq + (size_t)h * D;
                float *oi = out + ((size_t)b * Lq + i) * H * D + (size_t)h * D;
                int jn = causal && i + 1 < Lk ? i + 1 : Lk;
                float mx = -INFINITY, sum = 0.0f;
                for (int pass = 0; pass < 2; pass++)
                    for (int j = 0; j < jn; j++) {
                        const float *kj = k + ((size_t)b * Lk + j) * ldk + (size_t)h * D;
                        const float *vj = v + ((size_t)b * Lk + j) * ldv + (size_t)h * D;
                        float s = 0.0f;
                        for (int d = 0; d < D; d++) s += qi[d] * kj[d];
                        s *= scale;
                        if (pass == 0) { if (s > mx) mx = s; continue; }
                        if (j == 0) {
                            for (int jj = 0; jj < jn; jj++) {   /* the sum, now that max is known */
                                const float *kk = k + ((size_t)b * Lk + jj) * ldk + (size_t)h * D;
                                float t = 0.0f;
                                for (int d = 0; d < D; d++) t += qi[d] * kk[d];
                                sum += expf(t * scale - mx);
                            }
                            for (int d = 0; d < D; d++) oi[d] = 0.0f;
                        }
                        float p = expf(s - mx) / sum;
                        for (int d = 0; d < D; d++) oi[d] += p * vj[d];
                    }
            }
}

void k_attention(sdc_arena *a, float *out, const float *q, int ldq, const float *k, int ldk,
                 const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal) {
    size_t rows = ATT_TILE_FLOATS / (size_t)(Lk > 0 ? Lk : 1);
    if (rows < ATT_MIN_ROWS) rows = ATT_MIN_ROWS;
    if (rows > ATT_MAX_ROWS) rows = ATT_MAX_ROWS;
    if (rows > (size_t)Lq) rows = (size_t)Lq;
    int tq = (int)rows, ntiles = (Lq + tq - 1) / tq, HD = H * D;
    int nthr = omp_get_max_threads();
    long ntasks = (long)B * H * ntiles;
    if (nthr > ntasks) nthr = (int)ntasks;
    kint_init();
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *scratch = sdc_arena_f32(a, (size_t)nthr * tq * Lk);
    if (!scratch) { nthr = 1; scratch = sdc_arena_f32(a, (size_t)tq * Lk); }
    if (!scratch) {   /* no scratch at all: the row-at-a-time path needs none */
        att_rows_noscratch(out, q, ldq, k, ldk, v, ldv, B, Lq, Lk, H, D, causal);
        return;
    }
    #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (long t = 0; t < ntasks; t++) {
        int b = (int)(t / ((long)H * ntiles)), h = (int)(t / ntiles % H), i0 = (int)(t % ntiles) * tq;
        int i1 = i0 + tq < Lq ? i0 + tq : Lq;
        float *S = scratch + (size_t)omp_get_thread_num() * tq * Lk;
        att_tile(S, out + (size_t)b * Lq * HD + (size_t)h * D, q + (size_t)b * Lq * ldq + (size_t)h * D,
                 ldq, k + (size_t)b * Lk * ldk + (size_t)h * D, ldk, v + (size_t)b * Lk * ldv + (size_t)h * D,
                 ldv, Lk, HD, D, i0, i1, causal);
    }
    sdc_arena_reset(a, m);
}

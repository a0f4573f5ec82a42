/* attention.c — k_attention: softmax(q·kᵀ/√D [+ causal]) · v per (batch, head, query tile), with
 * the score tile in arena scratch (one per thread). With AVX-512: 64-query tiles, keys in blocks
 * of 128 with an online softmax (flash-attention style), scores kept as [key][query], k and v
 * packed per head, both products by register-blocked FMA loops (below). Otherwise: query tiles
 * of up to 256 rows, both products by sgemm. Causal is top-left aligned (query i sees keys
 * j <= i), as torch's scaled_dot_product_attention(is_causal=True) when Lq != Lk. */
#include "kernels/isa.h"   /* first: compiled once per vector width (kernels/isa.h) */

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/vmath.h"

/* A score tile holds at most this many floats (1 MiB: stays in L2 while softmax and ·v read it);
 * the query tile is ATT_TILE_FLOATS / Lk rows, within [ATT_MIN_ROWS, ATT_MAX_ROWS]. */
#define ATT_TILE_FLOATS ((size_t)256 << 10)
#define ATT_MIN_ROWS 16
#define ATT_MAX_ROWS 256

/* One (b, h, query rows i0..i1-1) task of the sgemm path. */
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

static float att_score(const float *qi, const float *kj, int D, float scale) {
    float s = 0.0f;
    for (int d = 0; d < D; d++) s += qi[d] * kj[d];
    return s * scale;
}

/* Without scratch: per query row, the scores are computed three times (max, sum, then p·v
 * accumulated straight into out). Slow, but needs no memory. */
static void att_rows_noscratch(float *out, const float *q, int ldq, const float *k, int ldk,
                               const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal) {
    float scale = 1.0f / sqrtf((float)D);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Lq; i++) {
                const float *qi = q + ((size_t)b * Lq + i) * ldq + (size_t)h * D;
                const float *kb = k + (size_t)b * Lk * ldk + (size_t)h * D, *vb = v + (size_t)b * Lk * ldv + (size_t)h * D;
                float *oi = out + ((size_t)b * Lq + i) * H * D + (size_t)h * D, mx = -INFINITY, sum = 0.0f;
                int jn = causal && i + 1 < Lk ? i + 1 : Lk;
                for (int j = 0; j < jn; j++) mx = fmaxf(mx, att_score(qi, kb + (size_t)j * ldk, D, scale));
                for (int j = 0; j < jn; j++) sum += expf(att_score(qi, kb + (size_t)j * ldk, D, scale) - mx);
                for (int d = 0; d < D; d++) oi[d] = 0.0f;
                for (int j = 0; j < jn; j++) {
                    float p = expf(att_score(qi, kb + (size_t)j * ldk, D, scale) - mx) / sum;
                    for (int d = 0; d < D; d++) oi[d] += p * vb[(size_t)j * ldv + d];
                }
            }
}

#if defined(__AVX512F__)
/* ---- AVX-512 path: scores as St[key][query], vectors run over 64 queries ----------------------
 * No lane is wasted for any head width D (the products broadcast k and v elements and load 64
 * queries), softmax runs down the key axis with plain vector max/exp/add, and k, v need no
 * packing. Measured against a q-row-major variant (K packed in 16-key blocks): as fast or faster
 * at every SD shape, 2x on the VAE's D = 512. */
#include <immintrin.h>

/* The register-blocked loops below are written out (generated) with one named variable per
 * accumulator: GCC keeps named vectors in registers but spills arrays of them every iteration. */
/* St[JB keys][64 queries] = k[JB, D] · qt[D, 64] (qt already scaled by 1/√D). */
static void qkT_j1(float *St, int lds, const float *qt, int ldq, const float *k, int ldk, int D) {
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        const float *qd = qt + (size_t)d * ldq;
        __m512 q0 = _mm512_loadu_ps(qd + 0), q1 = _mm512_loadu_ps(qd + 16), q2 = _mm512_loadu_ps(qd + 32), q3 = _mm512_loadu_ps(qd + 48), b;
        b = _mm512_set1_ps(k[(size_t)0 * ldk + d]); a0_0 = _mm512_fmadd_ps(b, q0, a0_0); a0_1 = _mm512_fmadd_ps(b, q1, a0_1); a0_2 = _mm512_fmadd_ps(b, q2, a0_2); a0_3 = _mm512_fmadd_ps(b, q3, a0_3);
    }
    _mm512_storeu_ps(St + (size_t)0 * lds + 0, a0_0); _mm512_storeu_ps(St + (size_t)0 * lds + 16, a0_1); _mm512_storeu_ps(St + (size_t)0 * lds + 32, a0_2); _mm512_storeu_ps(St + (size_t)0 * lds + 48, a0_3);
}
static void qkT_j2(float *St, int lds, const float *qt, int ldq, const float *k, int ldk, int D) {
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a1_2 = _mm512_setzero_ps(), a1_3 = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        const float *qd = qt + (size_t)d * ldq;
        __m512 q0 = _mm512_loadu_ps(qd + 0), q1 = _mm512_loadu_ps(qd + 16), q2 = _mm512_loadu_ps(qd + 32), q3 = _mm512_loadu_ps(qd + 48), b;
        b = _mm512_set1_ps(k[(size_t)0 * ldk + d]); a0_0 = _mm512_fmadd_ps(b, q0, a0_0); a0_1 = _mm512_fmadd_ps(b, q1, a0_1); a0_2 = _mm512_fmadd_ps(b, q2, a0_2); a0_3 = _mm512_fmadd_ps(b, q3, a0_3);
        b = _mm512_set1_ps(k[(size_t)1 * ldk + d]); a1_0 = _mm512_fmadd_ps(b, q0, a1_0); a1_1 = _mm512_fmadd_ps(b, q1, a1_1); a1_2 = _mm512_fmadd_ps(b, q2, a1_2); a1_3 = _mm512_fmadd_ps(b, q3, a1_3);
    }
    _mm512_storeu_ps(St + (size_t)0 * lds + 0, a0_0); _mm512_storeu_ps(St + (size_t)0 * lds + 16, a0_1); _mm512_storeu_ps(St + (size_t)0 * lds + 32, a0_2); _mm512_storeu_ps(St + (size_t)0 * lds + 48, a0_3);
    _mm512_storeu_ps(St + (size_t)1 * lds + 0, a1_0); _mm512_storeu_ps(St + (size_t)1 * lds + 16, a1_1); _mm512_storeu_ps(St + (size_t)1 * lds + 32, a1_2); _mm512_storeu_ps(St + (size_t)1 * lds + 48, a1_3);
}
static void qkT_j3(float *St, int lds, const float *qt, int ldq, const float *k, int ldk, int D) {
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a1_2 = _mm512_setzero_ps(), a1_3 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a2_2 = _mm512_setzero_ps(), a2_3 = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        const float *qd = qt + (size_t)d * ldq;
        __m512 q0 = _mm512_loadu_ps(qd + 0), q1 = _mm512_loadu_ps(qd + 16), q2 = _mm512_loadu_ps(qd + 32), q3 = _mm512_loadu_ps(qd + 48), b;
        b = _mm512_set1_ps(k[(size_t)0 * ldk + d]); a0_0 = _mm512_fmadd_ps(b, q0, a0_0); a0_1 = _mm512_fmadd_ps(b, q1, a0_1); a0_2 = _mm512_fmadd_ps(b, q2, a0_2); a0_3 = _mm512_fmadd_ps(b, q3, a0_3);
        b = _mm512_set1_ps(k[(size_t)1 * ldk + d]); a1_0 = _mm512_fmadd_ps(b, q0, a1_0); a1_1 = _mm512_fmadd_ps(b, q1, a1_1); a1_2 = _mm512_fmadd_ps(b, q2, a1_2); a1_3 = _mm512_fmadd_ps(b, q3, a1_3);
        b = _mm512_set1_ps(k[(size_t)2 * ldk + d]); a2_0 = _mm512_fmadd_ps(b, q0, a2_0); a2_1 = _mm512_fmadd_ps(b, q1, a2_1); a2_2 = _mm512_fmadd_ps(b, q2, a2_2); a2_3 = _mm512_fmadd_ps(b, q3, a2_3);
    }
    _mm512_storeu_ps(St + (size_t)0 * lds + 0, a0_0); _mm512_storeu_ps(St + (size_t)0 * lds + 16, a0_1); _mm512_storeu_ps(St + (size_t)0 * lds + 32, a0_2); _mm512_storeu_ps(St + (size_t)0 * lds + 48, a0_3);
    _mm512_storeu_ps(St + (size_t)1 * lds + 0, a1_0); _mm512_storeu_ps(St + (size_t)1 * lds + 16, a1_1); _mm512_storeu_ps(St + (size_t)1 * lds + 32, a1_2); _mm512_storeu_ps(St + (size_t)1 * lds + 48, a1_3);
    _mm512_storeu_ps(St + (size_t)2 * lds + 0, a2_0); _mm512_storeu_ps(St + (size_t)2 * lds + 16, a2_1); _mm512_storeu_ps(St + (size_t)2 * lds + 32, a2_2); _mm512_storeu_ps(St + (size_t)2 * lds + 48, a2_3);
}
static void qkT_j4(float *St, int lds, const float *qt, int ldq, const float *k, int ldk, int D) {
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a1_2 = _mm512_setzero_ps(), a1_3 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a2_2 = _mm512_setzero_ps(), a2_3 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a3_1 = _mm512_setzero_ps(), a3_2 = _mm512_setzero_ps(), a3_3 = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        const float *qd = qt + (size_t)d * ldq;
        __m512 q0 = _mm512_loadu_ps(qd + 0), q1 = _mm512_loadu_ps(qd + 16), q2 = _mm512_loadu_ps(qd + 32), q3 = _mm512_loadu_ps(qd + 48), b;
        b = _mm512_set1_ps(k[(size_t)0 * ldk + d]); a0_0 = _mm512_fmadd_ps(b, q0, a0_0); a0_1 = _mm512_fmadd_ps(b, q1, a0_1); a0_2 = _mm512_fmadd_ps(b, q2, a0_2); a0_3 = _mm512_fmadd_ps(b, q3, a0_3);
        b = _mm512_set1_ps(k[(size_t)1 * ldk + d]); a1_0 = _mm512_fmadd_ps(b, q0, a1_0); a1_1 = _mm512_fmadd_ps(b, q1, a1_1); a1_2 = _mm512_fmadd_ps(b, q2, a1_2); a1_3 = _mm512_fmadd_ps(b, q3, a1_3);
        b = _mm512_set1_ps(k[(size_t)2 * ldk + d]); a2_0 = _mm512_fmadd_ps(b, q0, a2_0); a2_1 = _mm512_fmadd_ps(b, q1, a2_1); a2_2 = _mm512_fmadd_ps(b, q2, a2_2); a2_3 = _mm512_fmadd_ps(b, q3, a2_3);
        b = _mm512_set1_ps(k[(size_t)3 * ldk + d]); a3_0 = _mm512_fmadd_ps(b, q0, a3_0); a3_1 = _mm512_fmadd_ps(b, q1, a3_1); a3_2 = _mm512_fmadd_ps(b, q2, a3_2); a3_3 = _mm512_fmadd_ps(b, q3, a3_3);
    }
    _mm512_storeu_ps(St + (size_t)0 * lds + 0, a0_0); _mm512_storeu_ps(St + (size_t)0 * lds + 16, a0_1); _mm512_storeu_ps(St + (size_t)0 * lds + 32, a0_2); _mm512_storeu_ps(St + (size_t)0 * lds + 48, a0_3);
    _mm512_storeu_ps(St + (size_t)1 * lds + 0, a1_0); _mm512_storeu_ps(St + (size_t)1 * lds + 16, a1_1); _mm512_storeu_ps(St + (size_t)1 * lds + 32, a1_2); _mm512_storeu_ps(St + (size_t)1 * lds + 48, a1_3);
    _mm512_storeu_ps(St + (size_t)2 * lds + 0, a2_0); _mm512_storeu_ps(St + (size_t)2 * lds + 16, a2_1); _mm512_storeu_ps(St + (size_t)2 * lds + 32, a2_2); _mm512_storeu_ps(St + (size_t)2 * lds + 48, a2_3);
    _mm512_storeu_ps(St + (size_t)3 * lds + 0, a3_0); _mm512_storeu_ps(St + (size_t)3 * lds + 16, a3_1); _mm512_storeu_ps(St + (size_t)3 * lds + 32, a3_2); _mm512_storeu_ps(St + (size_t)3 * lds + 48, a3_3);
}
static void qkT_j5(float *St, int lds, const float *qt, int ldq, const float *k, int ldk, int D) {
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a1_2 = _mm512_setzero_ps(), a1_3 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a2_2 = _mm512_setzero_ps(), a2_3 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a3_1 = _mm512_setzero_ps(), a3_2 = _mm512_setzero_ps(), a3_3 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a4_1 = _mm512_setzero_ps(), a4_2 = _mm512_setzero_ps(), a4_3 = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        const float *qd = qt + (size_t)d * ldq;
        __m512 q0 = _mm512_loadu_ps(qd + 0), q1 = _mm512_loadu_ps(qd + 16), q2 = _mm512_loadu_ps(qd + 32), q3 = _mm512_loadu_ps(qd + 48), b;
        b = _mm512_set1_ps(k[(size_t)0 * ldk + d]); a0_0 = _mm512_fmadd_ps(b, q0, a0_0); a0_1 = _mm512_fmadd_ps(b, q1, a0_1); a0_2 = _mm512_fmadd_ps(b, q2, a0_2); a0_3 = _mm512_fmadd_ps(b, q3, a0_3);
        b = _mm512_set1_ps(k[(size_t)1 * ldk + d]); a1_0 = _mm512_fmadd_ps(b, q0, a1_0); a1_1 = _mm512_fmadd_ps(b, q1, a1_1); a1_2 = _mm512_fmadd_ps(b, q2, a1_2); a1_3 = _mm512_fmadd_ps(b, q3, a1_3);
        b = _mm512_set1_ps(k[(size_t)2 * ldk + d]); a2_0 = _mm512_fmadd_ps(b, q0, a2_0); a2_1 = _mm512_fmadd_ps(b, q1, a2_1); a2_2 = _mm512_fmadd_ps(b, q2, a2_2); a2_3 = _mm512_fmadd_ps(b, q3, a2_3);
        b = _mm512_set1_ps(k[(size_t)3 * ldk + d]); a3_0 = _mm512_fmadd_ps(b, q0, a3_0); a3_1 = _mm512_fmadd_ps(b, q1, a3_1); a3_2 = _mm512_fmadd_ps(b, q2, a3_2); a3_3 = _mm512_fmadd_ps(b, q3, a3_3);
        b = _mm512_set1_ps(k[(size_t)4 * ldk + d]); a4_0 = _mm512_fmadd_ps(b, q0, a4_0); a4_1 = _mm512_fmadd_ps(b, q1, a4_1); a4_2 = _mm512_fmadd_ps(b, q2, a4_2); a4_3 = _mm512_fmadd_ps(b, q3, a4_3);
    }
    _mm512_storeu_ps(St + (size_t)0 * lds + 0, a0_0); _mm512_storeu_ps(St + (size_t)0 * lds + 16, a0_1); _mm512_storeu_ps(St + (size_t)0 * lds + 32, a0_2); _mm512_storeu_ps(St + (size_t)0 * lds + 48, a0_3);
    _mm512_storeu_ps(St + (size_t)1 * lds + 0, a1_0); _mm512_storeu_ps(St + (size_t)1 * lds + 16, a1_1); _mm512_storeu_ps(St + (size_t)1 * lds + 32, a1_2); _mm512_storeu_ps(St + (size_t)1 * lds + 48, a1_3);
    _mm512_storeu_ps(St + (size_t)2 * lds + 0, a2_0); _mm512_storeu_ps(St + (size_t)2 * lds + 16, a2_1); _mm512_storeu_ps(St + (size_t)2 * lds + 32, a2_2); _mm512_storeu_ps(St + (size_t)2 * lds + 48, a2_3);
    _mm512_storeu_ps(St + (size_t)3 * lds + 0, a3_0); _mm512_storeu_ps(St + (size_t)3 * lds + 16, a3_1); _mm512_storeu_ps(St + (size_t)3 * lds + 32, a3_2); _mm512_storeu_ps(St + (size_t)3 * lds + 48, a3_3);
    _mm512_storeu_ps(St + (size_t)4 * lds + 0, a4_0); _mm512_storeu_ps(St + (size_t)4 * lds + 16, a4_1); _mm512_storeu_ps(St + (size_t)4 * lds + 32, a4_2); _mm512_storeu_ps(St + (size_t)4 * lds + 48, a4_3);
}
static void qkT_j6(float *St, int lds, const float *qt, int ldq, const float *k, int ldk, int D) {
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a1_2 = _mm512_setzero_ps(), a1_3 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a2_2 = _mm512_setzero_ps(), a2_3 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a3_1 = _mm512_setzero_ps(), a3_2 = _mm512_setzero_ps(), a3_3 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a4_1 = _mm512_setzero_ps(), a4_2 = _mm512_setzero_ps(), a4_3 = _mm512_setzero_ps(), a5_0 = _mm512_setzero_ps(), a5_1 = _mm512_setzero_ps(), a5_2 = _mm512_setzero_ps(), a5_3 = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        const float *qd = qt + (size_t)d * ldq;
        __m512 q0 = _mm512_loadu_ps(qd + 0), q1 = _mm512_loadu_ps(qd + 16), q2 = _mm512_loadu_ps(qd + 32), q3 = _mm512_loadu_ps(qd + 48), b;
        b = _mm512_set1_ps(k[(size_t)0 * ldk + d]); a0_0 = _mm512_fmadd_ps(b, q0, a0_0); a0_1 = _mm512_fmadd_ps(b, q1, a0_1); a0_2 = _mm512_fmadd_ps(b, q2, a0_2); a0_3 = _mm512_fmadd_ps(b, q3, a0_3);
        b = _mm512_set1_ps(k[(size_t)1 * ldk + d]); a1_0 = _mm512_fmadd_ps(b, q0, a1_0); a1_1 = _mm512_fmadd_ps(b, q1, a1_1); a1_2 = _mm512_fmadd_ps(b, q2, a1_2); a1_3 = _mm512_fmadd_ps(b, q3, a1_3);
        b = _mm512_set1_ps(k[(size_t)2 * ldk + d]); a2_0 = _mm512_fmadd_ps(b, q0, a2_0); a2_1 = _mm512_fmadd_ps(b, q1, a2_1); a2_2 = _mm512_fmadd_ps(b, q2, a2_2); a2_3 = _mm512_fmadd_ps(b, q3, a2_3);
        b = _mm512_set1_ps(k[(size_t)3 * ldk + d]); a3_0 = _mm512_fmadd_ps(b, q0, a3_0); a3_1 = _mm512_fmadd_ps(b, q1, a3_1); a3_2 = _mm512_fmadd_ps(b, q2, a3_2); a3_3 = _mm512_fmadd_ps(b, q3, a3_3);
        b = _mm512_set1_ps(k[(size_t)4 * ldk + d]); a4_0 = _mm512_fmadd_ps(b, q0, a4_0); a4_1 = _mm512_fmadd_ps(b, q1, a4_1); a4_2 = _mm512_fmadd_ps(b, q2, a4_2); a4_3 = _mm512_fmadd_ps(b, q3, a4_3);
        b = _mm512_set1_ps(k[(size_t)5 * ldk + d]); a5_0 = _mm512_fmadd_ps(b, q0, a5_0); a5_1 = _mm512_fmadd_ps(b, q1, a5_1); a5_2 = _mm512_fmadd_ps(b, q2, a5_2); a5_3 = _mm512_fmadd_ps(b, q3, a5_3);
    }
    _mm512_storeu_ps(St + (size_t)0 * lds + 0, a0_0); _mm512_storeu_ps(St + (size_t)0 * lds + 16, a0_1); _mm512_storeu_ps(St + (size_t)0 * lds + 32, a0_2); _mm512_storeu_ps(St + (size_t)0 * lds + 48, a0_3);
    _mm512_storeu_ps(St + (size_t)1 * lds + 0, a1_0); _mm512_storeu_ps(St + (size_t)1 * lds + 16, a1_1); _mm512_storeu_ps(St + (size_t)1 * lds + 32, a1_2); _mm512_storeu_ps(St + (size_t)1 * lds + 48, a1_3);
    _mm512_storeu_ps(St + (size_t)2 * lds + 0, a2_0); _mm512_storeu_ps(St + (size_t)2 * lds + 16, a2_1); _mm512_storeu_ps(St + (size_t)2 * lds + 32, a2_2); _mm512_storeu_ps(St + (size_t)2 * lds + 48, a2_3);
    _mm512_storeu_ps(St + (size_t)3 * lds + 0, a3_0); _mm512_storeu_ps(St + (size_t)3 * lds + 16, a3_1); _mm512_storeu_ps(St + (size_t)3 * lds + 32, a3_2); _mm512_storeu_ps(St + (size_t)3 * lds + 48, a3_3);
    _mm512_storeu_ps(St + (size_t)4 * lds + 0, a4_0); _mm512_storeu_ps(St + (size_t)4 * lds + 16, a4_1); _mm512_storeu_ps(St + (size_t)4 * lds + 32, a4_2); _mm512_storeu_ps(St + (size_t)4 * lds + 48, a4_3);
    _mm512_storeu_ps(St + (size_t)5 * lds + 0, a5_0); _mm512_storeu_ps(St + (size_t)5 * lds + 16, a5_1); _mm512_storeu_ps(St + (size_t)5 * lds + 32, a5_2); _mm512_storeu_ps(St + (size_t)5 * lds + 48, a5_3);
}

/* ot[DB][64] (+)= v[Lk, DB]ᵀ · Pt[Lk, 64]: DB output columns of 64 queries; acc: add to ot. */
static void pvT_d1(float *ot, int ldo, const float *Pt, int ldp, const float *v, int ldv, int Lk, int acc) {
    __m512 a0_0 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 0) : _mm512_setzero_ps(), a0_1 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 16) : _mm512_setzero_ps(), a0_2 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 32) : _mm512_setzero_ps(), a0_3 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 48) : _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *pj = Pt + (size_t)j * ldp, *vj = v + (size_t)j * ldv;
        __m512 p0 = _mm512_loadu_ps(pj + 0), p1 = _mm512_loadu_ps(pj + 16), p2 = _mm512_loadu_ps(pj + 32), p3 = _mm512_loadu_ps(pj + 48), b;
        b = _mm512_set1_ps(vj[0]); a0_0 = _mm512_fmadd_ps(b, p0, a0_0); a0_1 = _mm512_fmadd_ps(b, p1, a0_1); a0_2 = _mm512_fmadd_ps(b, p2, a0_2); a0_3 = _mm512_fmadd_ps(b, p3, a0_3);
    }
    _mm512_storeu_ps(ot + (size_t)0 * ldo + 0, a0_0); _mm512_storeu_ps(ot + (size_t)0 * ldo + 16, a0_1); _mm512_storeu_ps(ot + (size_t)0 * ldo + 32, a0_2); _mm512_storeu_ps(ot + (size_t)0 * ldo + 48, a0_3);
}
static void pvT_d2(float *ot, int ldo, const float *Pt, int ldp, const float *v, int ldv, int Lk, int acc) {
    __m512 a0_0 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 0) : _mm512_setzero_ps(), a0_1 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 16) : _mm512_setzero_ps(), a0_2 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 32) : _mm512_setzero_ps(), a0_3 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 48) : _mm512_setzero_ps(), a1_0 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 0) : _mm512_setzero_ps(), a1_1 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 16) : _mm512_setzero_ps(), a1_2 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 32) : _mm512_setzero_ps(), a1_3 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 48) : _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *pj = Pt + (size_t)j * ldp, *vj = v + (size_t)j * ldv;
        __m512 p0 = _mm512_loadu_ps(pj + 0), p1 = _mm512_loadu_ps(pj + 16), p2 = _mm512_loadu_ps(pj + 32), p3 = _mm512_loadu_ps(pj + 48), b;
        b = _mm512_set1_ps(vj[0]); a0_0 = _mm512_fmadd_ps(b, p0, a0_0); a0_1 = _mm512_fmadd_ps(b, p1, a0_1); a0_2 = _mm512_fmadd_ps(b, p2, a0_2); a0_3 = _mm512_fmadd_ps(b, p3, a0_3);
        b = _mm512_set1_ps(vj[1]); a1_0 = _mm512_fmadd_ps(b, p0, a1_0); a1_1 = _mm512_fmadd_ps(b, p1, a1_1); a1_2 = _mm512_fmadd_ps(b, p2, a1_2); a1_3 = _mm512_fmadd_ps(b, p3, a1_3);
    }
    _mm512_storeu_ps(ot + (size_t)0 * ldo + 0, a0_0); _mm512_storeu_ps(ot + (size_t)0 * ldo + 16, a0_1); _mm512_storeu_ps(ot + (size_t)0 * ldo + 32, a0_2); _mm512_storeu_ps(ot + (size_t)0 * ldo + 48, a0_3);
    _mm512_storeu_ps(ot + (size_t)1 * ldo + 0, a1_0); _mm512_storeu_ps(ot + (size_t)1 * ldo + 16, a1_1); _mm512_storeu_ps(ot + (size_t)1 * ldo + 32, a1_2); _mm512_storeu_ps(ot + (size_t)1 * ldo + 48, a1_3);
}
static void pvT_d3(float *ot, int ldo, const float *Pt, int ldp, const float *v, int ldv, int Lk, int acc) {
    __m512 a0_0 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 0) : _mm512_setzero_ps(), a0_1 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 16) : _mm512_setzero_ps(), a0_2 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 32) : _mm512_setzero_ps(), a0_3 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 48) : _mm512_setzero_ps(), a1_0 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 0) : _mm512_setzero_ps(), a1_1 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 16) : _mm512_setzero_ps(), a1_2 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 32) : _mm512_setzero_ps(), a1_3 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 48) : _mm512_setzero_ps(), a2_0 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 0) : _mm512_setzero_ps(), a2_1 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 16) : _mm512_setzero_ps(), a2_2 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 32) : _mm512_setzero_ps(), a2_3 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 48) : _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *pj = Pt + (size_t)j * ldp, *vj = v + (size_t)j * ldv;
        __m512 p0 = _mm512_loadu_ps(pj + 0), p1 = _mm512_loadu_ps(pj + 16), p2 = _mm512_loadu_ps(pj + 32), p3 = _mm512_loadu_ps(pj + 48), b;
        b = _mm512_set1_ps(vj[0]); a0_0 = _mm512_fmadd_ps(b, p0, a0_0); a0_1 = _mm512_fmadd_ps(b, p1, a0_1); a0_2 = _mm512_fmadd_ps(b, p2, a0_2); a0_3 = _mm512_fmadd_ps(b, p3, a0_3);
        b = _mm512_set1_ps(vj[1]); a1_0 = _mm512_fmadd_ps(b, p0, a1_0); a1_1 = _mm512_fmadd_ps(b, p1, a1_1); a1_2 = _mm512_fmadd_ps(b, p2, a1_2); a1_3 = _mm512_fmadd_ps(b, p3, a1_3);
        b = _mm512_set1_ps(vj[2]); a2_0 = _mm512_fmadd_ps(b, p0, a2_0); a2_1 = _mm512_fmadd_ps(b, p1, a2_1); a2_2 = _mm512_fmadd_ps(b, p2, a2_2); a2_3 = _mm512_fmadd_ps(b, p3, a2_3);
    }
    _mm512_storeu_ps(ot + (size_t)0 * ldo + 0, a0_0); _mm512_storeu_ps(ot + (size_t)0 * ldo + 16, a0_1); _mm512_storeu_ps(ot + (size_t)0 * ldo + 32, a0_2); _mm512_storeu_ps(ot + (size_t)0 * ldo + 48, a0_3);
    _mm512_storeu_ps(ot + (size_t)1 * ldo + 0, a1_0); _mm512_storeu_ps(ot + (size_t)1 * ldo + 16, a1_1); _mm512_storeu_ps(ot + (size_t)1 * ldo + 32, a1_2); _mm512_storeu_ps(ot + (size_t)1 * ldo + 48, a1_3);
    _mm512_storeu_ps(ot + (size_t)2 * ldo + 0, a2_0); _mm512_storeu_ps(ot + (size_t)2 * ldo + 16, a2_1); _mm512_storeu_ps(ot + (size_t)2 * ldo + 32, a2_2); _mm512_storeu_ps(ot + (size_t)2 * ldo + 48, a2_3);
}
static void pvT_d4(float *ot, int ldo, const float *Pt, int ldp, const float *v, int ldv, int Lk, int acc) {
    __m512 a0_0 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 0) : _mm512_setzero_ps(), a0_1 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 16) : _mm512_setzero_ps(), a0_2 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 32) : _mm512_setzero_ps(), a0_3 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 48) : _mm512_setzero_ps(), a1_0 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 0) : _mm512_setzero_ps(), a1_1 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 16) : _mm512_setzero_ps(), a1_2 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 32) : _mm512_setzero_ps(), a1_3 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 48) : _mm512_setzero_ps(), a2_0 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 0) : _mm512_setzero_ps(), a2_1 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 16) : _mm512_setzero_ps(), a2_2 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 32) : _mm512_setzero_ps(), a2_3 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 48) : _mm512_setzero_ps(), a3_0 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 0) : _mm512_setzero_ps(), a3_1 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 16) : _mm512_setzero_ps(), a3_2 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 32) : _mm512_setzero_ps(), a3_3 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 48) : _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *pj = Pt + (size_t)j * ldp, *vj = v + (size_t)j * ldv;
        __m512 p0 = _mm512_loadu_ps(pj + 0), p1 = _mm512_loadu_ps(pj + 16), p2 = _mm512_loadu_ps(pj + 32), p3 = _mm512_loadu_ps(pj + 48), b;
        b = _mm512_set1_ps(vj[0]); a0_0 = _mm512_fmadd_ps(b, p0, a0_0); a0_1 = _mm512_fmadd_ps(b, p1, a0_1); a0_2 = _mm512_fmadd_ps(b, p2, a0_2); a0_3 = _mm512_fmadd_ps(b, p3, a0_3);
        b = _mm512_set1_ps(vj[1]); a1_0 = _mm512_fmadd_ps(b, p0, a1_0); a1_1 = _mm512_fmadd_ps(b, p1, a1_1); a1_2 = _mm512_fmadd_ps(b, p2, a1_2); a1_3 = _mm512_fmadd_ps(b, p3, a1_3);
        b = _mm512_set1_ps(vj[2]); a2_0 = _mm512_fmadd_ps(b, p0, a2_0); a2_1 = _mm512_fmadd_ps(b, p1, a2_1); a2_2 = _mm512_fmadd_ps(b, p2, a2_2); a2_3 = _mm512_fmadd_ps(b, p3, a2_3);
        b = _mm512_set1_ps(vj[3]); a3_0 = _mm512_fmadd_ps(b, p0, a3_0); a3_1 = _mm512_fmadd_ps(b, p1, a3_1); a3_2 = _mm512_fmadd_ps(b, p2, a3_2); a3_3 = _mm512_fmadd_ps(b, p3, a3_3);
    }
    _mm512_storeu_ps(ot + (size_t)0 * ldo + 0, a0_0); _mm512_storeu_ps(ot + (size_t)0 * ldo + 16, a0_1); _mm512_storeu_ps(ot + (size_t)0 * ldo + 32, a0_2); _mm512_storeu_ps(ot + (size_t)0 * ldo + 48, a0_3);
    _mm512_storeu_ps(ot + (size_t)1 * ldo + 0, a1_0); _mm512_storeu_ps(ot + (size_t)1 * ldo + 16, a1_1); _mm512_storeu_ps(ot + (size_t)1 * ldo + 32, a1_2); _mm512_storeu_ps(ot + (size_t)1 * ldo + 48, a1_3);
    _mm512_storeu_ps(ot + (size_t)2 * ldo + 0, a2_0); _mm512_storeu_ps(ot + (size_t)2 * ldo + 16, a2_1); _mm512_storeu_ps(ot + (size_t)2 * ldo + 32, a2_2); _mm512_storeu_ps(ot + (size_t)2 * ldo + 48, a2_3);
    _mm512_storeu_ps(ot + (size_t)3 * ldo + 0, a3_0); _mm512_storeu_ps(ot + (size_t)3 * ldo + 16, a3_1); _mm512_storeu_ps(ot + (size_t)3 * ldo + 32, a3_2); _mm512_storeu_ps(ot + (size_t)3 * ldo + 48, a3_3);
}
static void pvT_d5(float *ot, int ldo, const float *Pt, int ldp, const float *v, int ldv, int Lk, int acc) {
    __m512 a0_0 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 0) : _mm512_setzero_ps(), a0_1 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 16) : _mm512_setzero_ps(), a0_2 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 32) : _mm512_setzero_ps(), a0_3 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 48) : _mm512_setzero_ps(), a1_0 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 0) : _mm512_setzero_ps(), a1_1 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 16) : _mm512_setzero_ps(), a1_2 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 32) : _mm512_setzero_ps(), a1_3 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 48) : _mm512_setzero_ps(), a2_0 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 0) : _mm512_setzero_ps(), a2_1 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 16) : _mm512_setzero_ps(), a2_2 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 32) : _mm512_setzero_ps(), a2_3 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 48) : _mm512_setzero_ps(), a3_0 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 0) : _mm512_setzero_ps(), a3_1 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 16) : _mm512_setzero_ps(), a3_2 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 32) : _mm512_setzero_ps(), a3_3 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 48) : _mm512_setzero_ps(), a4_0 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 0) : _mm512_setzero_ps(), a4_1 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 16) : _mm512_setzero_ps(), a4_2 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 32) : _mm512_setzero_ps(), a4_3 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 48) : _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *pj = Pt + (size_t)j * ldp, *vj = v + (size_t)j * ldv;
        __m512 p0 = _mm512_loadu_ps(pj + 0), p1 = _mm512_loadu_ps(pj + 16), p2 = _mm512_loadu_ps(pj + 32), p3 = _mm512_loadu_ps(pj + 48), b;
        b = _mm512_set1_ps(vj[0]); a0_0 = _mm512_fmadd_ps(b, p0, a0_0); a0_1 = _mm512_fmadd_ps(b, p1, a0_1); a0_2 = _mm512_fmadd_ps(b, p2, a0_2); a0_3 = _mm512_fmadd_ps(b, p3, a0_3);
        b = _mm512_set1_ps(vj[1]); a1_0 = _mm512_fmadd_ps(b, p0, a1_0); a1_1 = _mm512_fmadd_ps(b, p1, a1_1); a1_2 = _mm512_fmadd_ps(b, p2, a1_2); a1_3 = _mm512_fmadd_ps(b, p3, a1_3);
        b = _mm512_set1_ps(vj[2]); a2_0 = _mm512_fmadd_ps(b, p0, a2_0); a2_1 = _mm512_fmadd_ps(b, p1, a2_1); a2_2 = _mm512_fmadd_ps(b, p2, a2_2); a2_3 = _mm512_fmadd_ps(b, p3, a2_3);
        b = _mm512_set1_ps(vj[3]); a3_0 = _mm512_fmadd_ps(b, p0, a3_0); a3_1 = _mm512_fmadd_ps(b, p1, a3_1); a3_2 = _mm512_fmadd_ps(b, p2, a3_2); a3_3 = _mm512_fmadd_ps(b, p3, a3_3);
        b = _mm512_set1_ps(vj[4]); a4_0 = _mm512_fmadd_ps(b, p0, a4_0); a4_1 = _mm512_fmadd_ps(b, p1, a4_1); a4_2 = _mm512_fmadd_ps(b, p2, a4_2); a4_3 = _mm512_fmadd_ps(b, p3, a4_3);
    }
    _mm512_storeu_ps(ot + (size_t)0 * ldo + 0, a0_0); _mm512_storeu_ps(ot + (size_t)0 * ldo + 16, a0_1); _mm512_storeu_ps(ot + (size_t)0 * ldo + 32, a0_2); _mm512_storeu_ps(ot + (size_t)0 * ldo + 48, a0_3);
    _mm512_storeu_ps(ot + (size_t)1 * ldo + 0, a1_0); _mm512_storeu_ps(ot + (size_t)1 * ldo + 16, a1_1); _mm512_storeu_ps(ot + (size_t)1 * ldo + 32, a1_2); _mm512_storeu_ps(ot + (size_t)1 * ldo + 48, a1_3);
    _mm512_storeu_ps(ot + (size_t)2 * ldo + 0, a2_0); _mm512_storeu_ps(ot + (size_t)2 * ldo + 16, a2_1); _mm512_storeu_ps(ot + (size_t)2 * ldo + 32, a2_2); _mm512_storeu_ps(ot + (size_t)2 * ldo + 48, a2_3);
    _mm512_storeu_ps(ot + (size_t)3 * ldo + 0, a3_0); _mm512_storeu_ps(ot + (size_t)3 * ldo + 16, a3_1); _mm512_storeu_ps(ot + (size_t)3 * ldo + 32, a3_2); _mm512_storeu_ps(ot + (size_t)3 * ldo + 48, a3_3);
    _mm512_storeu_ps(ot + (size_t)4 * ldo + 0, a4_0); _mm512_storeu_ps(ot + (size_t)4 * ldo + 16, a4_1); _mm512_storeu_ps(ot + (size_t)4 * ldo + 32, a4_2); _mm512_storeu_ps(ot + (size_t)4 * ldo + 48, a4_3);
}
static void pvT_d6(float *ot, int ldo, const float *Pt, int ldp, const float *v, int ldv, int Lk, int acc) {
    __m512 a0_0 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 0) : _mm512_setzero_ps(), a0_1 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 16) : _mm512_setzero_ps(), a0_2 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 32) : _mm512_setzero_ps(), a0_3 = acc ? _mm512_loadu_ps(ot + (size_t)0 * ldo + 48) : _mm512_setzero_ps(), a1_0 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 0) : _mm512_setzero_ps(), a1_1 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 16) : _mm512_setzero_ps(), a1_2 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 32) : _mm512_setzero_ps(), a1_3 = acc ? _mm512_loadu_ps(ot + (size_t)1 * ldo + 48) : _mm512_setzero_ps(), a2_0 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 0) : _mm512_setzero_ps(), a2_1 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 16) : _mm512_setzero_ps(), a2_2 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 32) : _mm512_setzero_ps(), a2_3 = acc ? _mm512_loadu_ps(ot + (size_t)2 * ldo + 48) : _mm512_setzero_ps(), a3_0 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 0) : _mm512_setzero_ps(), a3_1 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 16) : _mm512_setzero_ps(), a3_2 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 32) : _mm512_setzero_ps(), a3_3 = acc ? _mm512_loadu_ps(ot + (size_t)3 * ldo + 48) : _mm512_setzero_ps(), a4_0 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 0) : _mm512_setzero_ps(), a4_1 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 16) : _mm512_setzero_ps(), a4_2 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 32) : _mm512_setzero_ps(), a4_3 = acc ? _mm512_loadu_ps(ot + (size_t)4 * ldo + 48) : _mm512_setzero_ps(), a5_0 = acc ? _mm512_loadu_ps(ot + (size_t)5 * ldo + 0) : _mm512_setzero_ps(), a5_1 = acc ? _mm512_loadu_ps(ot + (size_t)5 * ldo + 16) : _mm512_setzero_ps(), a5_2 = acc ? _mm512_loadu_ps(ot + (size_t)5 * ldo + 32) : _mm512_setzero_ps(), a5_3 = acc ? _mm512_loadu_ps(ot + (size_t)5 * ldo + 48) : _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *pj = Pt + (size_t)j * ldp, *vj = v + (size_t)j * ldv;
        __m512 p0 = _mm512_loadu_ps(pj + 0), p1 = _mm512_loadu_ps(pj + 16), p2 = _mm512_loadu_ps(pj + 32), p3 = _mm512_loadu_ps(pj + 48), b;
        b = _mm512_set1_ps(vj[0]); a0_0 = _mm512_fmadd_ps(b, p0, a0_0); a0_1 = _mm512_fmadd_ps(b, p1, a0_1); a0_2 = _mm512_fmadd_ps(b, p2, a0_2); a0_3 = _mm512_fmadd_ps(b, p3, a0_3);
        b = _mm512_set1_ps(vj[1]); a1_0 = _mm512_fmadd_ps(b, p0, a1_0); a1_1 = _mm512_fmadd_ps(b, p1, a1_1); a1_2 = _mm512_fmadd_ps(b, p2, a1_2); a1_3 = _mm512_fmadd_ps(b, p3, a1_3);
        b = _mm512_set1_ps(vj[2]); a2_0 = _mm512_fmadd_ps(b, p0, a2_0); a2_1 = _mm512_fmadd_ps(b, p1, a2_1); a2_2 = _mm512_fmadd_ps(b, p2, a2_2); a2_3 = _mm512_fmadd_ps(b, p3, a2_3);
        b = _mm512_set1_ps(vj[3]); a3_0 = _mm512_fmadd_ps(b, p0, a3_0); a3_1 = _mm512_fmadd_ps(b, p1, a3_1); a3_2 = _mm512_fmadd_ps(b, p2, a3_2); a3_3 = _mm512_fmadd_ps(b, p3, a3_3);
        b = _mm512_set1_ps(vj[4]); a4_0 = _mm512_fmadd_ps(b, p0, a4_0); a4_1 = _mm512_fmadd_ps(b, p1, a4_1); a4_2 = _mm512_fmadd_ps(b, p2, a4_2); a4_3 = _mm512_fmadd_ps(b, p3, a4_3);
        b = _mm512_set1_ps(vj[5]); a5_0 = _mm512_fmadd_ps(b, p0, a5_0); a5_1 = _mm512_fmadd_ps(b, p1, a5_1); a5_2 = _mm512_fmadd_ps(b, p2, a5_2); a5_3 = _mm512_fmadd_ps(b, p3, a5_3);
    }
    _mm512_storeu_ps(ot + (size_t)0 * ldo + 0, a0_0); _mm512_storeu_ps(ot + (size_t)0 * ldo + 16, a0_1); _mm512_storeu_ps(ot + (size_t)0 * ldo + 32, a0_2); _mm512_storeu_ps(ot + (size_t)0 * ldo + 48, a0_3);
    _mm512_storeu_ps(ot + (size_t)1 * ldo + 0, a1_0); _mm512_storeu_ps(ot + (size_t)1 * ldo + 16, a1_1); _mm512_storeu_ps(ot + (size_t)1 * ldo + 32, a1_2); _mm512_storeu_ps(ot + (size_t)1 * ldo + 48, a1_3);
    _mm512_storeu_ps(ot + (size_t)2 * ldo + 0, a2_0); _mm512_storeu_ps(ot + (size_t)2 * ldo + 16, a2_1); _mm512_storeu_ps(ot + (size_t)2 * ldo + 32, a2_2); _mm512_storeu_ps(ot + (size_t)2 * ldo + 48, a2_3);
    _mm512_storeu_ps(ot + (size_t)3 * ldo + 0, a3_0); _mm512_storeu_ps(ot + (size_t)3 * ldo + 16, a3_1); _mm512_storeu_ps(ot + (size_t)3 * ldo + 32, a3_2); _mm512_storeu_ps(ot + (size_t)3 * ldo + 48, a3_3);
    _mm512_storeu_ps(ot + (size_t)4 * ldo + 0, a4_0); _mm512_storeu_ps(ot + (size_t)4 * ldo + 16, a4_1); _mm512_storeu_ps(ot + (size_t)4 * ldo + 32, a4_2); _mm512_storeu_ps(ot + (size_t)4 * ldo + 48, a4_3);
    _mm512_storeu_ps(ot + (size_t)5 * ldo + 0, a5_0); _mm512_storeu_ps(ot + (size_t)5 * ldo + 16, a5_1); _mm512_storeu_ps(ot + (size_t)5 * ldo + 32, a5_2); _mm512_storeu_ps(ot + (size_t)5 * ldo + 48, a5_3);
}

#define AT_TQ 64

static void qkT_block(float *St, const float *qt, const float *k, int ldk, int D, int nj) {
    int j = 0;
    for (; j + 6 <= nj; j += 6) qkT_j6(St + (size_t)j * AT_TQ, AT_TQ, qt, AT_TQ, k + (size_t)j * ldk, ldk, D);
    const float *kj = k + (size_t)j * ldk;
    float *sj = St + (size_t)j * AT_TQ;
    switch (nj - j) {
    case 1: qkT_j1(sj, AT_TQ, qt, AT_TQ, kj, ldk, D); break;
    case 2: qkT_j2(sj, AT_TQ, qt, AT_TQ, kj, ldk, D); break;
    case 3: qkT_j3(sj, AT_TQ, qt, AT_TQ, kj, ldk, D); break;
    case 4: qkT_j4(sj, AT_TQ, qt, AT_TQ, kj, ldk, D); break;
    case 5: qkT_j5(sj, AT_TQ, qt, AT_TQ, kj, ldk, D); break;
    default: break;
    }
}

/* ot[D][64] (+)= Pt[nj][64]ᵀ-product with v[nj, D] for one key block (nj <= AT_KB: the block
 * of Pt stays in L1 while every block of output columns runs over it). acc: add to ot. */
static void pvT_block(float *ot, const float *Pt, const float *v, int ldv, int nj, int D, int acc) {
    int d = 0;
    for (; d + 6 <= D; d += 6) pvT_d6(ot + (size_t)d * AT_TQ, AT_TQ, Pt, AT_TQ, v + d, ldv, nj, acc);
    float *od = ot + (size_t)d * AT_TQ;
    switch (D - d) {
    case 1: pvT_d1(od, AT_TQ, Pt, AT_TQ, v + d, ldv, nj, acc); break;
    case 2: pvT_d2(od, AT_TQ, Pt, AT_TQ, v + d, ldv, nj, acc); break;
    case 3: pvT_d3(od, AT_TQ, Pt, AT_TQ, v + d, ldv, nj, acc); break;
    case 4: pvT_d4(od, AT_TQ, Pt, AT_TQ, v + d, ldv, nj, acc); break;
    case 5: pvT_d5(od, AT_TQ, Pt, AT_TQ, v + d, ldv, nj, acc); break;
    default: break;
    }
}

/* exp(s - m) for s <= m (softmax): 2^t, t = (s - m)·log2 e split as n + f, |f| <= 1/2, and 2^f
 * by its degree-6 Taylor polynomial (relative error < 2e-7, below float's own rounding of t for
 * |s - m| > 3); scalef makes 2^n, down to 0 for -inf (masked keys). Fewer operations than
 * vexp's clamped Cody-Waite form, which matters where D is small (40: as many FMAs go into the
 * exponentials as into the two products). */
static inline __m512 exp_le0(__m512 s, __m512 m) {
    __m512 t = _mm512_mul_ps(_mm512_max_ps(_mm512_sub_ps(s, m), _mm512_set1_ps(-104.0f)), _mm512_set1_ps(VM_LOG2E));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.5403530e-4f);                     /* ln2^6 / 720 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));     /* ln2^5 / 120 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));     /* ln2^4 / 24 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));     /* ln2^3 / 6 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));     /* ln2^2 / 2 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));     /* ln2 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Keys per block of the online softmax: the block's scores St[AT_KB][64] (36 KiB) stay in L1
 * from q·kᵀ through exp to ·v; a multiple of 6 so q·kᵀ runs only its 6-key kernel. Measured
 * (one thread, CPU time, UNet self-attention 64x64, D = 40): whole-row score tile (1 MiB, in
 * L2, read four times) 625 ms; blocks of 96 or 128 keys 485 ms; 144 or 240 keys 360 ms. */
#define AT_KB 144

/* Block maxima of the 4 query vectors over nj score rows, merged into the running maxima. */
static inline void blk_max(const float *St, int nj, __m512 *m) {
    __m512 b0 = m[0], b1 = m[1], b2 = m[2], b3 = m[3];
    for (int j = 0; j < nj; j++) {
        const float *r = St + (size_t)j * AT_TQ;
        b0 = _mm512_max_ps(b0, _mm512_loadu_ps(r));
        b1 = _mm512_max_ps(b1, _mm512_loadu_ps(r + 16));
        b2 = _mm512_max_ps(b2, _mm512_loadu_ps(r + 32));
        b3 = _mm512_max_ps(b3, _mm512_loadu_ps(r + 48));
    }
    m[0] = b0; m[1] = b1; m[2] = b2; m[3] = b3;
}

/* One task: queries i0 .. i0+nq-1 (nq <= 64) of one (b, h), flash-attention style: keys in blocks
 * of AT_KB with a running maximum m and sum l per query; when m grows, l and the output
 * accumulator are rescaled by exp(m_old - m_new). scr: St [AT_KB][64], qt and ot [D][64].
 * q, k, v, out already point at this batch and head. */
static void att_tile_fast(float *scr, float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv, int Lk, int D, int i0, int nq, int causal) {
    float *St = scr, *qt = St + (size_t)AT_KB * AT_TQ, *ot = qt + (size_t)D * AT_TQ;
    float scale = 1.0f / sqrtf((float)D);
    for (int d = 0; d < D; d++)
        for (int i = 0; i < AT_TQ; i++) qt[d * AT_TQ + i] = i < nq ? q[(size_t)(i0 + i) * ldq + d] * scale : 0.0f;
    /* causal: query i0 + i sees keys j <= i0 + i, so no real query sees a key past i0 + nq - 1 */
    int jend = causal && i0 + nq < Lk ? i0 + nq : Lk;
    __m512 m[4], l[4];
    for (int c = 0; c < 4; c++) { m[c] = _mm512_set1_ps(-INFINITY); l[c] = _mm512_setzero_ps(); }
    for (int j0 = 0; j0 < jend; j0 += AT_KB) {
        int nj = jend - j0 < AT_KB ? jend - j0 : AT_KB;
        qkT_block(St, qt, k + (size_t)j0 * ldk, ldk, D, nj);
        if (causal)   /* key j masked for lanes i < j - i0 (key 0 never is: every lane's max is finite) */
            for (int j = j0 > i0 + 1 ? j0 : i0 + 1; j < j0 + nj; j++)
                for (int i = 0; i < AT_TQ && i < j - i0; i++) St[(size_t)(j - j0) * AT_TQ + i] = -INFINITY;
        __m512 mn[4] = {m[0], m[1], m[2], m[3]}, alpha[4];
        blk_max(St, nj, mn);
        for (int c = 0; c < 4; c++) { alpha[c] = exp_le0(m[c], mn[c]); m[c] = mn[c]; }
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int j = 0; j < nj; j++) {
            float *r = St + (size_t)j * AT_TQ;
            __m512 e0 = exp_le0(_mm512_loadu_ps(r), mn[0]), e1 = exp_le0(_mm512_loadu_ps(r + 16), mn[1]);
            __m512 e2 = exp_le0(_mm512_loadu_ps(r + 32), mn[2]), e3 = exp_le0(_mm512_loadu_ps(r + 48), mn[3]);
            _mm512_storeu_ps(r, e0); _mm512_storeu_ps(r + 16, e1); _mm512_storeu_ps(r + 32, e2); _mm512_storeu_ps(r + 48, e3);
            s0 = _mm512_add_ps(s0, e0); s1 = _mm512_add_ps(s1, e1); s2 = _mm512_add_ps(s2, e2); s3 = _mm512_add_ps(s3, e3);
        }
        if (j0 == 0) {   /* first block: the accumulator starts here (alpha would be 0 · garbage) */
            l[0] = s0; l[1] = s1; l[2] = s2; l[3] = s3;
        } else {
            l[0] = _mm512_fmadd_ps(l[0], alpha[0], s0); l[1] = _mm512_fmadd_ps(l[1], alpha[1], s1);
            l[2] = _mm512_fmadd_ps(l[2], alpha[2], s2); l[3] = _mm512_fmadd_ps(l[3], alpha[3], s3);
            for (int d = 0; d < D; d++)
                for (int c = 0; c < 4; c++) {
                    float *o = ot + (size_t)d * AT_TQ + 16 * c;
                    _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_loadu_ps(o), alpha[c]));
                }
        }
        pvT_block(ot, St, v + (size_t)j0 * ldv, ldv, nj, D, j0 > 0);
    }
    float inv[AT_TQ];
    __m512 one = _mm512_set1_ps(1.0f);
    for (int c = 0; c < 4; c++) _mm512_storeu_ps(inv + 16 * c, _mm512_div_ps(one, l[c]));
    for (int i = 0; i < nq; i++)
        for (int d = 0; d < D; d++) out[(size_t)(i0 + i) * ldo + d] = ot[d * AT_TQ + i] * inv[i];
}

/* Keys and values copied per (batch, head) to kp, vp [B][H][Lk][D] (contiguous rows): read in
 * place, a head's rows are D floats out of every ld, and at D = 40 both products ran at half
 * speed on the scattered cache lines (Lk = 4096, one thread). */
static void pack_heads(float *dst, const float *src, int ld, int B, int L, int H, int D) {
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int j = 0; j < L; j++)
                memcpy(dst + (((size_t)b * H + h) * L + j) * D, src + ((size_t)b * L + j) * ld + (size_t)h * D,
                       (size_t)D * sizeof(float));
}

/* Returns 0 (nothing written) when the arena cannot give the scratch; the caller falls back. */
static int att_fast(sdc_arena *a, float *out, const float *q, int ldq, const float *k, int ldk,
                    const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal) {
    int ntiles = (Lq + AT_TQ - 1) / AT_TQ, HD = H * D, nthr = omp_get_max_threads();
    long ntasks = (long)B * H * ntiles;
    if (nthr > ntasks) nthr = (int)ntasks;
    size_t per = (size_t)(AT_KB + 2 * D) * AT_TQ;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *scratch = sdc_arena_f32(a, (size_t)nthr * per);
    if (!scratch) return 0;
    /* packed keys/values when a head's rows are scattered (the packed copy is optional: without
     * it the products read k and v in place) */
    size_t nkv = (size_t)B * H * Lk * D;
    float *kp = H > 1 ? sdc_arena_f32(a, 2 * nkv) : NULL;
    if (kp) {
        pack_heads(kp, k, ldk, B, Lk, H, D);
        pack_heads(kp + nkv, v, ldv, B, Lk, H, D);
    }
    #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (long t = 0; t < ntasks; t++) {
        int bh = (int)(t / ntiles), b = bh / H, h = bh % H, i0 = (int)(t % ntiles) * AT_TQ;
        const float *kb = kp ? kp + (size_t)bh * Lk * D : k + (size_t)b * Lk * ldk + (size_t)h * D;
        const float *vb = kp ? kp + nkv + (size_t)bh * Lk * D : v + (size_t)b * Lk * ldv + (size_t)h * D;
        att_tile_fast(scratch + (size_t)omp_get_thread_num() * per, out + (size_t)b * Lq * HD + (size_t)h * D, HD,
                      q + (size_t)b * Lq * ldq + (size_t)h * D, ldq, kb, kp ? D : ldk, vb, kp ? D : ldv, Lk, D, i0,
                      Lq - i0 < AT_TQ ? Lq - i0 : AT_TQ, causal);
    }
    sdc_arena_reset(a, m);
    return 1;
}

#endif

void KISA_NAME(k_attention)(sdc_arena *a, float *out, const float *q, int ldq, const float *k, int ldk,
                            const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal) {
    KISA_VOID(k_attention, a, out, q, ldq, k, ldk, v, ldv, B, Lq, Lk, H, D, causal);
    if (B <= 0 || Lq <= 0 || H <= 0 || D <= 0) return;
    if (Lk <= 0) {   /* no keys: the empty sum */
        for (size_t i = 0; i < (size_t)B * Lq * H * D; i++) out[i] = 0.0f;
        return;
    }
    kint_init();
#if defined(__AVX512F__)
    if (att_fast(a, out, q, ldq, k, ldk, v, ldv, B, Lq, Lk, H, D, causal)) return;
#endif
    size_t rows = ATT_TILE_FLOATS / (size_t)(Lk > 0 ? Lk : 1);
    if (rows < ATT_MIN_ROWS) rows = ATT_MIN_ROWS;
    if (rows > ATT_MAX_ROWS) rows = ATT_MAX_ROWS;
    if (rows > (size_t)Lq) rows = (size_t)Lq;
    int tq = (int)rows, ntiles = (Lq + tq - 1) / tq, HD = H * D;
    int nthr = omp_get_max_threads();
    long ntasks = (long)B * H * ntiles;
    if (nthr > ntasks) nthr = (int)ntasks;
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

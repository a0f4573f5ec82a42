/* attention.c — k_attention: softmax(q·kᵀ/√D [+ causal]) · v per (batch, head, query tile), with
 * the score tile in arena scratch (one per thread) and both products by sgemm. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "kernels/kernels_internal.h"
#include "kernels/vmath.h"

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

#if defined(__AVX512F__)
/* ---- AVX-512 path: K packed once per call, both products by register-blocked FMA loops ------ */
#include <immintrin.h>

/* kt[Lkp/16][D][16] = k[j][d] in blocks of 16 keys (zero for keys >= Lk), for one (b, h). */
static void pack_kt(float *kt, const float *k, int ldk, int Lk, int Lkp, int D) {
    for (int j = 0; j < Lkp; j++)
        for (int d = 0; d < D; d++)
            kt[((size_t)(j / 16) * D + d) * 16 + j % 16] = j < Lk ? k[(size_t)j * ldk + d] : 0.0f;
}

/* The register-blocked loops below are written out (generated) with one named variable per
 * accumulator: GCC keeps named vectors in registers but spills arrays of them every iteration. */
/* S[R, Lkp] (row stride lds) = sc · q[R, D] · ktᵀ: R query rows x 32 keys per step. */
static void qk_rows8(float *S, int lds, const float *q, int ldq, const float *kt, int D, int Lkp, __m512 sc) {
    int j = 0;
    for (; j + 32 <= Lkp; j += 32) {
        const float *k0 = kt + (size_t)j * D, *k1 = k0 + (size_t)16 * D;
        __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a3_1 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a4_1 = _mm512_setzero_ps(), a5_0 = _mm512_setzero_ps(), a5_1 = _mm512_setzero_ps(), a6_0 = _mm512_setzero_ps(), a6_1 = _mm512_setzero_ps(), a7_0 = _mm512_setzero_ps(), a7_1 = _mm512_setzero_ps();
        for (int d = 0; d < D; d++) {
            __m512 x0 = _mm512_loadu_ps(k0 + d * 16), x1 = _mm512_loadu_ps(k1 + d * 16), qq;
            qq = _mm512_set1_ps(q[(size_t)0 * ldq + d]); a0_0 = _mm512_fmadd_ps(qq, x0, a0_0); a0_1 = _mm512_fmadd_ps(qq, x1, a0_1);
            qq = _mm512_set1_ps(q[(size_t)1 * ldq + d]); a1_0 = _mm512_fmadd_ps(qq, x0, a1_0); a1_1 = _mm512_fmadd_ps(qq, x1, a1_1);
            qq = _mm512_set1_ps(q[(size_t)2 * ldq + d]); a2_0 = _mm512_fmadd_ps(qq, x0, a2_0); a2_1 = _mm512_fmadd_ps(qq, x1, a2_1);
            qq = _mm512_set1_ps(q[(size_t)3 * ldq + d]); a3_0 = _mm512_fmadd_ps(qq, x0, a3_0); a3_1 = _mm512_fmadd_ps(qq, x1, a3_1);
            qq = _mm512_set1_ps(q[(size_t)4 * ldq + d]); a4_0 = _mm512_fmadd_ps(qq, x0, a4_0); a4_1 = _mm512_fmadd_ps(qq, x1, a4_1);
            qq = _mm512_set1_ps(q[(size_t)5 * ldq + d]); a5_0 = _mm512_fmadd_ps(qq, x0, a5_0); a5_1 = _mm512_fmadd_ps(qq, x1, a5_1);
            qq = _mm512_set1_ps(q[(size_t)6 * ldq + d]); a6_0 = _mm512_fmadd_ps(qq, x0, a6_0); a6_1 = _mm512_fmadd_ps(qq, x1, a6_1);
            qq = _mm512_set1_ps(q[(size_t)7 * ldq + d]); a7_0 = _mm512_fmadd_ps(qq, x0, a7_0); a7_1 = _mm512_fmadd_ps(qq, x1, a7_1);
        }
        _mm512_storeu_ps(S + (size_t)0 * lds + j, _mm512_mul_ps(a0_0, sc)); _mm512_storeu_ps(S + (size_t)0 * lds + j + 16, _mm512_mul_ps(a0_1, sc));
        _mm512_storeu_ps(S + (size_t)1 * lds + j, _mm512_mul_ps(a1_0, sc)); _mm512_storeu_ps(S + (size_t)1 * lds + j + 16, _mm512_mul_ps(a1_1, sc));
        _mm512_storeu_ps(S + (size_t)2 * lds + j, _mm512_mul_ps(a2_0, sc)); _mm512_storeu_ps(S + (size_t)2 * lds + j + 16, _mm512_mul_ps(a2_1, sc));
        _mm512_storeu_ps(S + (size_t)3 * lds + j, _mm512_mul_ps(a3_0, sc)); _mm512_storeu_ps(S + (size_t)3 * lds + j + 16, _mm512_mul_ps(a3_1, sc));
        _mm512_storeu_ps(S + (size_t)4 * lds + j, _mm512_mul_ps(a4_0, sc)); _mm512_storeu_ps(S + (size_t)4 * lds + j + 16, _mm512_mul_ps(a4_1, sc));
        _mm512_storeu_ps(S + (size_t)5 * lds + j, _mm512_mul_ps(a5_0, sc)); _mm512_storeu_ps(S + (size_t)5 * lds + j + 16, _mm512_mul_ps(a5_1, sc));
        _mm512_storeu_ps(S + (size_t)6 * lds + j, _mm512_mul_ps(a6_0, sc)); _mm512_storeu_ps(S + (size_t)6 * lds + j + 16, _mm512_mul_ps(a6_1, sc));
        _mm512_storeu_ps(S + (size_t)7 * lds + j, _mm512_mul_ps(a7_0, sc)); _mm512_storeu_ps(S + (size_t)7 * lds + j + 16, _mm512_mul_ps(a7_1, sc));
    }
    if (j < Lkp) {
        const float *k0 = kt + (size_t)j * D;
        __m512 a0_0 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a5_0 = _mm512_setzero_ps(), a6_0 = _mm512_setzero_ps(), a7_0 = _mm512_setzero_ps();
        for (int d = 0; d < D; d++) {
            __m512 x0 = _mm512_loadu_ps(k0 + d * 16);
            a0_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)0 * ldq + d]), x0, a0_0);
            a1_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)1 * ldq + d]), x0, a1_0);
            a2_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)2 * ldq + d]), x0, a2_0);
            a3_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)3 * ldq + d]), x0, a3_0);
            a4_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)4 * ldq + d]), x0, a4_0);
            a5_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)5 * ldq + d]), x0, a5_0);
            a6_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)6 * ldq + d]), x0, a6_0);
            a7_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)7 * ldq + d]), x0, a7_0);
        }
        _mm512_storeu_ps(S + (size_t)0 * lds + j, _mm512_mul_ps(a0_0, sc));
        _mm512_storeu_ps(S + (size_t)1 * lds + j, _mm512_mul_ps(a1_0, sc));
        _mm512_storeu_ps(S + (size_t)2 * lds + j, _mm512_mul_ps(a2_0, sc));
        _mm512_storeu_ps(S + (size_t)3 * lds + j, _mm512_mul_ps(a3_0, sc));
        _mm512_storeu_ps(S + (size_t)4 * lds + j, _mm512_mul_ps(a4_0, sc));
        _mm512_storeu_ps(S + (size_t)5 * lds + j, _mm512_mul_ps(a5_0, sc));
        _mm512_storeu_ps(S + (size_t)6 * lds + j, _mm512_mul_ps(a6_0, sc));
        _mm512_storeu_ps(S + (size_t)7 * lds + j, _mm512_mul_ps(a7_0, sc));
    }
}
static void qk_rows1(float *S, int lds, const float *q, int ldq, const float *kt, int D, int Lkp, __m512 sc) {
    int j = 0;
    for (; j + 32 <= Lkp; j += 32) {
        const float *k0 = kt + (size_t)j * D, *k1 = k0 + (size_t)16 * D;
        __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps();
        for (int d = 0; d < D; d++) {
            __m512 x0 = _mm512_loadu_ps(k0 + d * 16), x1 = _mm512_loadu_ps(k1 + d * 16), qq;
            qq = _mm512_set1_ps(q[(size_t)0 * ldq + d]); a0_0 = _mm512_fmadd_ps(qq, x0, a0_0); a0_1 = _mm512_fmadd_ps(qq, x1, a0_1);
        }
        _mm512_storeu_ps(S + (size_t)0 * lds + j, _mm512_mul_ps(a0_0, sc)); _mm512_storeu_ps(S + (size_t)0 * lds + j + 16, _mm512_mul_ps(a0_1, sc));
    }
    if (j < Lkp) {
        const float *k0 = kt + (size_t)j * D;
        __m512 a0_0 = _mm512_setzero_ps();
        for (int d = 0; d < D; d++) {
            __m512 x0 = _mm512_loadu_ps(k0 + d * 16);
            a0_0 = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)0 * ldq + d]), x0, a0_0);
        }
        _mm512_storeu_ps(S + (size_t)0 * lds + j, _mm512_mul_ps(a0_0, sc));
    }
}

/* o[R, d0 .. d0+16·NV) = inv[r] · P[R, Lk] · v[Lk, same columns], columns beyond D masked. */
static void pv_r8_v1(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    __m512 a0_0 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a5_0 = _mm512_setzero_ps(), a6_0 = _mm512_setzero_ps(), a7_0 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0);
        p = _mm512_set1_ps(P[(size_t)1 * ldp + j]); a1_0 = _mm512_fmadd_ps(p, x0, a1_0);
        p = _mm512_set1_ps(P[(size_t)2 * ldp + j]); a2_0 = _mm512_fmadd_ps(p, x0, a2_0);
        p = _mm512_set1_ps(P[(size_t)3 * ldp + j]); a3_0 = _mm512_fmadd_ps(p, x0, a3_0);
        p = _mm512_set1_ps(P[(size_t)4 * ldp + j]); a4_0 = _mm512_fmadd_ps(p, x0, a4_0);
        p = _mm512_set1_ps(P[(size_t)5 * ldp + j]); a5_0 = _mm512_fmadd_ps(p, x0, a5_0);
        p = _mm512_set1_ps(P[(size_t)6 * ldp + j]); a6_0 = _mm512_fmadd_ps(p, x0, a6_0);
        p = _mm512_set1_ps(P[(size_t)7 * ldp + j]); a7_0 = _mm512_fmadd_ps(p, x0, a7_0);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); }
    { __m512 s = _mm512_set1_ps(inv[1]); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 0, m0, _mm512_mul_ps(a1_0, s)); }
    { __m512 s = _mm512_set1_ps(inv[2]); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 0, m0, _mm512_mul_ps(a2_0, s)); }
    { __m512 s = _mm512_set1_ps(inv[3]); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 0, m0, _mm512_mul_ps(a3_0, s)); }
    { __m512 s = _mm512_set1_ps(inv[4]); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 0, m0, _mm512_mul_ps(a4_0, s)); }
    { __m512 s = _mm512_set1_ps(inv[5]); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 0, m0, _mm512_mul_ps(a5_0, s)); }
    { __m512 s = _mm512_set1_ps(inv[6]); _mm512_mask_storeu_ps(o + (size_t)6 * ldo + d0 + 0, m0, _mm512_mul_ps(a6_0, s)); }
    { __m512 s = _mm512_set1_ps(inv[7]); _mm512_mask_storeu_ps(o + (size_t)7 * ldo + d0 + 0, m0, _mm512_mul_ps(a7_0, s)); }
}
static void pv_r8_v2(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    int rem1 = D - d0 - 16;
    __mmask16 m1 = rem1 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem1) - 1);
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a3_1 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a4_1 = _mm512_setzero_ps(), a5_0 = _mm512_setzero_ps(), a5_1 = _mm512_setzero_ps(), a6_0 = _mm512_setzero_ps(), a6_1 = _mm512_setzero_ps(), a7_0 = _mm512_setzero_ps(), a7_1 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), x1 = _mm512_maskz_loadu_ps(m1, vj + 16), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0); a0_1 = _mm512_fmadd_ps(p, x1, a0_1);
        p = _mm512_set1_ps(P[(size_t)1 * ldp + j]); a1_0 = _mm512_fmadd_ps(p, x0, a1_0); a1_1 = _mm512_fmadd_ps(p, x1, a1_1);
        p = _mm512_set1_ps(P[(size_t)2 * ldp + j]); a2_0 = _mm512_fmadd_ps(p, x0, a2_0); a2_1 = _mm512_fmadd_ps(p, x1, a2_1);
        p = _mm512_set1_ps(P[(size_t)3 * ldp + j]); a3_0 = _mm512_fmadd_ps(p, x0, a3_0); a3_1 = _mm512_fmadd_ps(p, x1, a3_1);
        p = _mm512_set1_ps(P[(size_t)4 * ldp + j]); a4_0 = _mm512_fmadd_ps(p, x0, a4_0); a4_1 = _mm512_fmadd_ps(p, x1, a4_1);
        p = _mm512_set1_ps(P[(size_t)5 * ldp + j]); a5_0 = _mm512_fmadd_ps(p, x0, a5_0); a5_1 = _mm512_fmadd_ps(p, x1, a5_1);
        p = _mm512_set1_ps(P[(size_t)6 * ldp + j]); a6_0 = _mm512_fmadd_ps(p, x0, a6_0); a6_1 = _mm512_fmadd_ps(p, x1, a6_1);
        p = _mm512_set1_ps(P[(size_t)7 * ldp + j]); a7_0 = _mm512_fmadd_ps(p, x0, a7_0); a7_1 = _mm512_fmadd_ps(p, x1, a7_1);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 16, m1, _mm512_mul_ps(a0_1, s)); }
    { __m512 s = _mm512_set1_ps(inv[1]); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 0, m0, _mm512_mul_ps(a1_0, s)); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 16, m1, _mm512_mul_ps(a1_1, s)); }
    { __m512 s = _mm512_set1_ps(inv[2]); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 0, m0, _mm512_mul_ps(a2_0, s)); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 16, m1, _mm512_mul_ps(a2_1, s)); }
    { __m512 s = _mm512_set1_ps(inv[3]); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 0, m0, _mm512_mul_ps(a3_0, s)); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 16, m1, _mm512_mul_ps(a3_1, s)); }
    { __m512 s = _mm512_set1_ps(inv[4]); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 0, m0, _mm512_mul_ps(a4_0, s)); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 16, m1, _mm512_mul_ps(a4_1, s)); }
    { __m512 s = _mm512_set1_ps(inv[5]); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 0, m0, _mm512_mul_ps(a5_0, s)); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 16, m1, _mm512_mul_ps(a5_1, s)); }
    { __m512 s = _mm512_set1_ps(inv[6]); _mm512_mask_storeu_ps(o + (size_t)6 * ldo + d0 + 0, m0, _mm512_mul_ps(a6_0, s)); _mm512_mask_storeu_ps(o + (size_t)6 * ldo + d0 + 16, m1, _mm512_mul_ps(a6_1, s)); }
    { __m512 s = _mm512_set1_ps(inv[7]); _mm512_mask_storeu_ps(o + (size_t)7 * ldo + d0 + 0, m0, _mm512_mul_ps(a7_0, s)); _mm512_mask_storeu_ps(o + (size_t)7 * ldo + d0 + 16, m1, _mm512_mul_ps(a7_1, s)); }
}
static void pv_r8_v3(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    int rem1 = D - d0 - 16;
    __mmask16 m1 = rem1 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem1) - 1);
    int rem2 = D - d0 - 32;
    __mmask16 m2 = rem2 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem2) - 1);
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a1_2 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a2_2 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a3_1 = _mm512_setzero_ps(), a3_2 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a4_1 = _mm512_setzero_ps(), a4_2 = _mm512_setzero_ps(), a5_0 = _mm512_setzero_ps(), a5_1 = _mm512_setzero_ps(), a5_2 = _mm512_setzero_ps(), a6_0 = _mm512_setzero_ps(), a6_1 = _mm512_setzero_ps(), a6_2 = _mm512_setzero_ps(), a7_0 = _mm512_setzero_ps(), a7_1 = _mm512_setzero_ps(), a7_2 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), x1 = _mm512_maskz_loadu_ps(m1, vj + 16), x2 = _mm512_maskz_loadu_ps(m2, vj + 32), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0); a0_1 = _mm512_fmadd_ps(p, x1, a0_1); a0_2 = _mm512_fmadd_ps(p, x2, a0_2);
        p = _mm512_set1_ps(P[(size_t)1 * ldp + j]); a1_0 = _mm512_fmadd_ps(p, x0, a1_0); a1_1 = _mm512_fmadd_ps(p, x1, a1_1); a1_2 = _mm512_fmadd_ps(p, x2, a1_2);
        p = _mm512_set1_ps(P[(size_t)2 * ldp + j]); a2_0 = _mm512_fmadd_ps(p, x0, a2_0); a2_1 = _mm512_fmadd_ps(p, x1, a2_1); a2_2 = _mm512_fmadd_ps(p, x2, a2_2);
        p = _mm512_set1_ps(P[(size_t)3 * ldp + j]); a3_0 = _mm512_fmadd_ps(p, x0, a3_0); a3_1 = _mm512_fmadd_ps(p, x1, a3_1); a3_2 = _mm512_fmadd_ps(p, x2, a3_2);
        p = _mm512_set1_ps(P[(size_t)4 * ldp + j]); a4_0 = _mm512_fmadd_ps(p, x0, a4_0); a4_1 = _mm512_fmadd_ps(p, x1, a4_1); a4_2 = _mm512_fmadd_ps(p, x2, a4_2);
        p = _mm512_set1_ps(P[(size_t)5 * ldp + j]); a5_0 = _mm512_fmadd_ps(p, x0, a5_0); a5_1 = _mm512_fmadd_ps(p, x1, a5_1); a5_2 = _mm512_fmadd_ps(p, x2, a5_2);
        p = _mm512_set1_ps(P[(size_t)6 * ldp + j]); a6_0 = _mm512_fmadd_ps(p, x0, a6_0); a6_1 = _mm512_fmadd_ps(p, x1, a6_1); a6_2 = _mm512_fmadd_ps(p, x2, a6_2);
        p = _mm512_set1_ps(P[(size_t)7 * ldp + j]); a7_0 = _mm512_fmadd_ps(p, x0, a7_0); a7_1 = _mm512_fmadd_ps(p, x1, a7_1); a7_2 = _mm512_fmadd_ps(p, x2, a7_2);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 16, m1, _mm512_mul_ps(a0_1, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 32, m2, _mm512_mul_ps(a0_2, s)); }
    { __m512 s = _mm512_set1_ps(inv[1]); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 0, m0, _mm512_mul_ps(a1_0, s)); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 16, m1, _mm512_mul_ps(a1_1, s)); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 32, m2, _mm512_mul_ps(a1_2, s)); }
    { __m512 s = _mm512_set1_ps(inv[2]); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 0, m0, _mm512_mul_ps(a2_0, s)); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 16, m1, _mm512_mul_ps(a2_1, s)); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 32, m2, _mm512_mul_ps(a2_2, s)); }
    { __m512 s = _mm512_set1_ps(inv[3]); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 0, m0, _mm512_mul_ps(a3_0, s)); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 16, m1, _mm512_mul_ps(a3_1, s)); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 32, m2, _mm512_mul_ps(a3_2, s)); }
    { __m512 s = _mm512_set1_ps(inv[4]); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 0, m0, _mm512_mul_ps(a4_0, s)); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 16, m1, _mm512_mul_ps(a4_1, s)); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 32, m2, _mm512_mul_ps(a4_2, s)); }
    { __m512 s = _mm512_set1_ps(inv[5]); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 0, m0, _mm512_mul_ps(a5_0, s)); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 16, m1, _mm512_mul_ps(a5_1, s)); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 32, m2, _mm512_mul_ps(a5_2, s)); }
    { __m512 s = _mm512_set1_ps(inv[6]); _mm512_mask_storeu_ps(o + (size_t)6 * ldo + d0 + 0, m0, _mm512_mul_ps(a6_0, s)); _mm512_mask_storeu_ps(o + (size_t)6 * ldo + d0 + 16, m1, _mm512_mul_ps(a6_1, s)); _mm512_mask_storeu_ps(o + (size_t)6 * ldo + d0 + 32, m2, _mm512_mul_ps(a6_2, s)); }
    { __m512 s = _mm512_set1_ps(inv[7]); _mm512_mask_storeu_ps(o + (size_t)7 * ldo + d0 + 0, m0, _mm512_mul_ps(a7_0, s)); _mm512_mask_storeu_ps(o + (size_t)7 * ldo + d0 + 16, m1, _mm512_mul_ps(a7_1, s)); _mm512_mask_storeu_ps(o + (size_t)7 * ldo + d0 + 32, m2, _mm512_mul_ps(a7_2, s)); }
}
static void pv_r6_v4(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    int rem1 = D - d0 - 16;
    __mmask16 m1 = rem1 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem1) - 1);
    int rem2 = D - d0 - 32;
    __mmask16 m2 = rem2 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem2) - 1);
    int rem3 = D - d0 - 48;
    __mmask16 m3 = rem3 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem3) - 1);
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps(), a1_0 = _mm512_setzero_ps(), a1_1 = _mm512_setzero_ps(), a1_2 = _mm512_setzero_ps(), a1_3 = _mm512_setzero_ps(), a2_0 = _mm512_setzero_ps(), a2_1 = _mm512_setzero_ps(), a2_2 = _mm512_setzero_ps(), a2_3 = _mm512_setzero_ps(), a3_0 = _mm512_setzero_ps(), a3_1 = _mm512_setzero_ps(), a3_2 = _mm512_setzero_ps(), a3_3 = _mm512_setzero_ps(), a4_0 = _mm512_setzero_ps(), a4_1 = _mm512_setzero_ps(), a4_2 = _mm512_setzero_ps(), a4_3 = _mm512_setzero_ps(), a5_0 = _mm512_setzero_ps(), a5_1 = _mm512_setzero_ps(), a5_2 = _mm512_setzero_ps(), a5_3 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), x1 = _mm512_maskz_loadu_ps(m1, vj + 16), x2 = _mm512_maskz_loadu_ps(m2, vj + 32), x3 = _mm512_maskz_loadu_ps(m3, vj + 48), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0); a0_1 = _mm512_fmadd_ps(p, x1, a0_1); a0_2 = _mm512_fmadd_ps(p, x2, a0_2); a0_3 = _mm512_fmadd_ps(p, x3, a0_3);
        p = _mm512_set1_ps(P[(size_t)1 * ldp + j]); a1_0 = _mm512_fmadd_ps(p, x0, a1_0); a1_1 = _mm512_fmadd_ps(p, x1, a1_1); a1_2 = _mm512_fmadd_ps(p, x2, a1_2); a1_3 = _mm512_fmadd_ps(p, x3, a1_3);
        p = _mm512_set1_ps(P[(size_t)2 * ldp + j]); a2_0 = _mm512_fmadd_ps(p, x0, a2_0); a2_1 = _mm512_fmadd_ps(p, x1, a2_1); a2_2 = _mm512_fmadd_ps(p, x2, a2_2); a2_3 = _mm512_fmadd_ps(p, x3, a2_3);
        p = _mm512_set1_ps(P[(size_t)3 * ldp + j]); a3_0 = _mm512_fmadd_ps(p, x0, a3_0); a3_1 = _mm512_fmadd_ps(p, x1, a3_1); a3_2 = _mm512_fmadd_ps(p, x2, a3_2); a3_3 = _mm512_fmadd_ps(p, x3, a3_3);
        p = _mm512_set1_ps(P[(size_t)4 * ldp + j]); a4_0 = _mm512_fmadd_ps(p, x0, a4_0); a4_1 = _mm512_fmadd_ps(p, x1, a4_1); a4_2 = _mm512_fmadd_ps(p, x2, a4_2); a4_3 = _mm512_fmadd_ps(p, x3, a4_3);
        p = _mm512_set1_ps(P[(size_t)5 * ldp + j]); a5_0 = _mm512_fmadd_ps(p, x0, a5_0); a5_1 = _mm512_fmadd_ps(p, x1, a5_1); a5_2 = _mm512_fmadd_ps(p, x2, a5_2); a5_3 = _mm512_fmadd_ps(p, x3, a5_3);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 16, m1, _mm512_mul_ps(a0_1, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 32, m2, _mm512_mul_ps(a0_2, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 48, m3, _mm512_mul_ps(a0_3, s)); }
    { __m512 s = _mm512_set1_ps(inv[1]); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 0, m0, _mm512_mul_ps(a1_0, s)); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 16, m1, _mm512_mul_ps(a1_1, s)); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 32, m2, _mm512_mul_ps(a1_2, s)); _mm512_mask_storeu_ps(o + (size_t)1 * ldo + d0 + 48, m3, _mm512_mul_ps(a1_3, s)); }
    { __m512 s = _mm512_set1_ps(inv[2]); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 0, m0, _mm512_mul_ps(a2_0, s)); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 16, m1, _mm512_mul_ps(a2_1, s)); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 32, m2, _mm512_mul_ps(a2_2, s)); _mm512_mask_storeu_ps(o + (size_t)2 * ldo + d0 + 48, m3, _mm512_mul_ps(a2_3, s)); }
    { __m512 s = _mm512_set1_ps(inv[3]); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 0, m0, _mm512_mul_ps(a3_0, s)); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 16, m1, _mm512_mul_ps(a3_1, s)); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 32, m2, _mm512_mul_ps(a3_2, s)); _mm512_mask_storeu_ps(o + (size_t)3 * ldo + d0 + 48, m3, _mm512_mul_ps(a3_3, s)); }
    { __m512 s = _mm512_set1_ps(inv[4]); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 0, m0, _mm512_mul_ps(a4_0, s)); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 16, m1, _mm512_mul_ps(a4_1, s)); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 32, m2, _mm512_mul_ps(a4_2, s)); _mm512_mask_storeu_ps(o + (size_t)4 * ldo + d0 + 48, m3, _mm512_mul_ps(a4_3, s)); }
    { __m512 s = _mm512_set1_ps(inv[5]); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 0, m0, _mm512_mul_ps(a5_0, s)); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 16, m1, _mm512_mul_ps(a5_1, s)); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 32, m2, _mm512_mul_ps(a5_2, s)); _mm512_mask_storeu_ps(o + (size_t)5 * ldo + d0 + 48, m3, _mm512_mul_ps(a5_3, s)); }
}
static void pv_r1_v1(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    __m512 a0_0 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); }
}
static void pv_r1_v2(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    int rem1 = D - d0 - 16;
    __mmask16 m1 = rem1 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem1) - 1);
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), x1 = _mm512_maskz_loadu_ps(m1, vj + 16), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0); a0_1 = _mm512_fmadd_ps(p, x1, a0_1);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 16, m1, _mm512_mul_ps(a0_1, s)); }
}
static void pv_r1_v3(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    int rem1 = D - d0 - 16;
    __mmask16 m1 = rem1 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem1) - 1);
    int rem2 = D - d0 - 32;
    __mmask16 m2 = rem2 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem2) - 1);
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), x1 = _mm512_maskz_loadu_ps(m1, vj + 16), x2 = _mm512_maskz_loadu_ps(m2, vj + 32), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0); a0_1 = _mm512_fmadd_ps(p, x1, a0_1); a0_2 = _mm512_fmadd_ps(p, x2, a0_2);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 16, m1, _mm512_mul_ps(a0_1, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 32, m2, _mm512_mul_ps(a0_2, s)); }
}
static void pv_r1_v4(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D, int d0, const float *inv) {
    int rem0 = D - d0 - 0;
    __mmask16 m0 = rem0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem0) - 1);
    int rem1 = D - d0 - 16;
    __mmask16 m1 = rem1 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem1) - 1);
    int rem2 = D - d0 - 32;
    __mmask16 m2 = rem2 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem2) - 1);
    int rem3 = D - d0 - 48;
    __mmask16 m3 = rem3 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem3) - 1);
    __m512 a0_0 = _mm512_setzero_ps(), a0_1 = _mm512_setzero_ps(), a0_2 = _mm512_setzero_ps(), a0_3 = _mm512_setzero_ps();
    for (int j = 0; j < Lk; j++) {
        const float *vj = v + (size_t)j * ldv + d0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, vj + 0), x1 = _mm512_maskz_loadu_ps(m1, vj + 16), x2 = _mm512_maskz_loadu_ps(m2, vj + 32), x3 = _mm512_maskz_loadu_ps(m3, vj + 48), p;
        p = _mm512_set1_ps(P[(size_t)0 * ldp + j]); a0_0 = _mm512_fmadd_ps(p, x0, a0_0); a0_1 = _mm512_fmadd_ps(p, x1, a0_1); a0_2 = _mm512_fmadd_ps(p, x2, a0_2); a0_3 = _mm512_fmadd_ps(p, x3, a0_3);
    }
    { __m512 s = _mm512_set1_ps(inv[0]); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 0, m0, _mm512_mul_ps(a0_0, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 16, m1, _mm512_mul_ps(a0_1, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 32, m2, _mm512_mul_ps(a0_2, s)); _mm512_mask_storeu_ps(o + (size_t)0 * ldo + d0 + 48, m3, _mm512_mul_ps(a0_3, s)); }
}

/* o[rows, D] = diag(inv) · P[rows, Lk] · v[Lk, D]: column passes of up to 64 floats. */
static void pv_block(float *o, int ldo, const float *P, int ldp, const float *v, int ldv, int Lk, int D,
                     int rows, const float *inv) {
    for (int d0 = 0; d0 < D; d0 += 64) {
        int nv = (D - d0 + 15) / 16 < 4 ? (D - d0 + 15) / 16 : 4, big = nv == 4 ? 6 : 8, r = 0;
        for (; r + big <= rows; r += big) {
            const float *Pr = P + (size_t)r * ldp;
            float *orow = o + (size_t)r * ldo;
            if (nv == 1) pv_r8_v1(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
            else if (nv == 2) pv_r8_v2(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
            else if (nv == 3) pv_r8_v3(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
            else pv_r6_v4(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
        }
        for (; r < rows; r++) {
            const float *Pr = P + (size_t)r * ldp;
            float *orow = o + (size_t)r * ldo;
            if (nv == 1) pv_r1_v1(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
            else if (nv == 2) pv_r1_v2(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
            else if (nv == 3) pv_r1_v3(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
            else pv_r1_v4(orow, ldo, Pr, ldp, v, ldv, Lk, D, d0, inv + r);
        }
    }
}

/* One row of Lkp scores (padding and causally hidden keys already -inf): s = exp(s - max),
 * returns 1 / Σ. Lkp is a multiple of 16. */
static float softmax_unnorm16(float *s, int Lkp) {
    __m512 mv = _mm512_set1_ps(-INFINITY), sv = _mm512_setzero_ps();
    for (int j = 0; j < Lkp; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(s + j));
    vf m = vset(_mm512_reduce_max_ps(mv));
    for (int j = 0; j < Lkp; j += 16) {
        vf e = vexp(vsub(vload(s + j), m));
        vstore(s + j, e);
        sv = _mm512_add_ps(sv, e);
    }
    return 1.0f / _mm512_reduce_add_ps(sv);
}

/* One task: query rows i0..i1-1 of one (b, h). S: scratch [i1-i0, Lkp] plus inv [i1-i0]. */
static void att_tile_fast(float *S, float *inv, float *out, const float *q, int ldq, const float *kt,
                          const float *v, int ldv, int Lk, int Lkp, int HD, int D, int i0, int i1,
                          int causal) {
    int tq = i1 - i0, r = 0;
    __m512 sc = _mm512_set1_ps(1.0f / sqrtf((float)D));
    for (; r + 8 <= tq; r += 8) qk_rows8(S + (size_t)r * Lkp, Lkp, q + (size_t)(i0 + r) * ldq, ldq, kt, D, Lkp, sc);
    for (; r < tq; r++) qk_rows1(S + (size_t)r * Lkp, Lkp, q + (size_t)(i0 + r) * ldq, ldq, kt, D, Lkp, sc);
    for (r = 0; r < tq; r++) {
        float *s = S + (size_t)r * Lkp;
        int first_hidden = causal && i0 + r + 1 < Lk ? i0 + r + 1 : Lk;
        for (int j = first_hidden; j < Lkp; j++) s[j] = -INFINITY;
        inv[r] = softmax_unnorm16(s, Lkp);
    }
    pv_block(out + (size_t)i0 * HD, HD, S, Lkp, v, ldv, Lk, D, tq, inv);
}

static int att_fast(sdc_arena *a, float *out, const float *q, int ldq, const float *k, int ldk,
                    const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal) {
    int Lkp = (Lk + 15) / 16 * 16, HD = H * D;
    size_t rows = ATT_TILE_FLOATS / (size_t)Lkp;
    if (rows < ATT_MIN_ROWS) rows = ATT_MIN_ROWS;
    if (rows > ATT_MAX_ROWS) rows = ATT_MAX_ROWS;
    if (rows > (size_t)Lq) rows = (size_t)Lq;
    int tq = (int)rows, ntiles = (Lq + tq - 1) / tq, nthr = omp_get_max_threads();
    long ntasks = (long)B * H * ntiles;
    if (nthr > ntasks) nthr = (int)ntasks;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *kt = sdc_arena_f32(a, (size_t)B * H * Lkp * D);
    float *scratch = sdc_arena_f32(a, (size_t)nthr * tq * (Lkp + 1));
    if (!kt || !scratch) { sdc_arena_reset(a, m); return 0; }
    #pragma omp parallel for num_threads(nthr) schedule(static)
    for (int bh = 0; bh < B * H; bh++)
        pack_kt(kt + (size_t)bh * Lkp * D, k + (size_t)(bh / H) * Lk * ldk + (size_t)(bh % H) * D, ldk, Lk, Lkp, D);
    #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (long t = 0; t < ntasks; t++) {
        int bh = (int)(t / ntiles), b = bh / H, h = bh % H, i0 = (int)(t % ntiles) * tq;
        int i1 = i0 + tq < Lq ? i0 + tq : Lq;
        float *S = scratch + (size_t)omp_get_thread_num() * tq * (Lkp + 1), *inv = S + (size_t)tq * Lkp;
        att_tile_fast(S, inv, out + (size_t)b * Lq * HD + (size_t)h * D, q + (size_t)b * Lq * ldq + (size_t)h * D,
                      ldq, kt + (size_t)bh * Lkp * D, v + (size_t)b * Lk * ldv + (size_t)h * D, ldv, Lk, Lkp, HD, D,
                      i0, i1, causal);
    }
    sdc_arena_reset(a, m);
    return 1;
}
#endif

void k_attention(sdc_arena *a, float *out, const float *q, int ldq, const float *k, int ldk,
                 const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal) {
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

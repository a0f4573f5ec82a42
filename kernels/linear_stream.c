/* linear_stream.c — k_linear_stream: a Linear whose weight arrives a panel of rows at a time.
 *
 * out[M,N] (+)= in[M,K] · Wᵀ + b. The weight is never whole in f32: each task widens one panel of
 * LS_NR weight rows through the caller's callback (e.g. from the file's f16 values), transposes it
 * into per-thread scratch Wt[K][LS_NR] that stays in L2, and runs every LS_MR-row block of the
 * input against it in a register-blocked micro-kernel: LS_MR x 2 vectors of sums, one broadcast
 * input value and two weight vectors per k. The input is read in place (no packing; its rows
 * stream from L2/L3), so narrow panels cost nothing extra, unlike one sgemm call per panel, which
 * packs the whole input every call (5-25% slower at the UNet's shapes, measured).
 *
 * Every output element is one sum over k in order, fused multiply-adds from zero, then added to
 * the bias and/or the existing out (out + b first, then the sum, as a residual's bias-then-sgemm
 * did): the same bits whatever the thread count, the split of rows and panels, and the vector
 * width (the AVX2 and AVX-512 copies differ only in how many sums run side by side). */
#include "kernels/isa.h"   /* first: compiled once per vector width (kernels/isa.h) */

#include <omp.h>
#include <stddef.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define LS_VL 16   /* floats per vector */
#define LS_MR 12   /* input rows per micro-kernel: 24 accumulators of the 32 registers */
#elif defined(__AVX2__)
#define LS_VL 8
#define LS_MR 6    /* 12 accumulators of the 16 registers */
#else
#define LS_VL 4
#define LS_MR 4
#endif
#define LS_NR (2 * LS_VL)   /* weight rows (output columns) per panel */

typedef float ls_vf __attribute__((vector_size(LS_VL * sizeof(float))));

static inline ls_vf ls_load(const float *p) { ls_vf v; memcpy(&v, p, sizeof v); return v; }
/* every lane v (a vbroadcastss; `(ls_vf){0} + v` would add the zero first, a scalar add per use) */
static inline ls_vf ls_bcast(float v) {
#if defined(__AVX512F__)
    return (ls_vf)_mm512_set1_ps(v);
#elif defined(__AVX2__)
    return (ls_vf)_mm256_set1_ps(v);
#else
    ls_vf x;
    for (int l = 0; l < LS_VL; l++) x[l] = v;
    return x;
#endif
}
static inline void ls_store(float *p, ls_vf v) { memcpy(p, &v, sizeof v); }

/* C[i·ldc + j] = base(i, j) + Σ_k X[i·K + k] · Wt[k·LS_NR + j] for i < mr, j < nc, where base =
 * (acc ? C : 0) (+ b[j] when b). X has LS_MR readable rows (the caller pads a tail block). */
static void ls_kernel(float *C, size_t ldc, const float *X, size_t K, const float *Wt, const float *b, int acc,
                      int mr, int nc) {
    ls_vf s0[LS_MR], s1[LS_MR];
    for (int i = 0; i < LS_MR; i++) s0[i] = s1[i] = (ls_vf){0};
    for (size_t k = 0; k < K; k++) {
        const ls_vf w0 = ls_load(Wt + k * LS_NR), w1 = ls_load(Wt + k * LS_NR + LS_VL);
        for (int i = 0; i < LS_MR; i++) {
            const ls_vf x = ls_bcast(X[i * K + k]);
            s0[i] += x * w0;
            s1[i] += x * w1;
        }
    }
    for (int i = 0; i < mr; i++) {
        float *c = C + i * ldc;
        if (nc == LS_NR) {
            ls_vf c0 = (ls_vf){0}, c1 = (ls_vf){0};
            if (acc) { c0 = ls_load(c); c1 = ls_load(c + LS_VL); }
            if (b && acc) { c0 = c0 + ls_load(b); c1 = c1 + ls_load(b + LS_VL); }
            else if (b) { c0 = ls_load(b); c1 = ls_load(b + LS_VL); }
            ls_store(c, c0 + s0[i]);
            ls_store(c + LS_VL, c1 + s1[i]);
        } else {
            float t[LS_NR];
            ls_store(t, s0[i]);
            ls_store(t + LS_VL, s1[i]);
            for (int j = 0; j < nc; j++) {
                float base = acc ? c[j] : 0.0f;
                if (b) base = acc ? base + b[j] : b[j];
                c[j] = base + t[j];
            }
        }
    }
}

/* Wt[k·LS_NR + j] = Wr[j·K + k] for j < np, 0 for np <= j < LS_NR. */
static void ls_transpose(float *Wt, const float *Wr, int np, size_t K) {
    for (size_t k0 = 0; k0 < K; k0 += 64) {   /* 64 k at a time: the Wt lines being filled stay in L1 */
        const size_t k1 = K - k0 < 64 ? K : k0 + 64;
        for (int j = 0; j < LS_NR; j++)
            for (size_t k = k0; k < k1; k++) Wt[k * LS_NR + j] = j < np ? Wr[(size_t)j * K + k] : 0.0f;
    }
}

int KISA_NAME(k_linear_stream)(sdc_arena *a, float *out, const float *in, k_rows_fn rows, void *ctx,
                               const float *b, int M, int K, int N, int acc) {
    KISA_RET(k_linear_stream, a, out, in, rows, ctx, b, M, K, N, acc);
    if (M <= 0 || N <= 0 || K <= 0) return 1;
    const int npan = (N + LS_NR - 1) / LS_NR;
    const int nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
    /* row chunks per panel: 1 unless the panels are too few to share out (each chunk widens its
     * panel again); blocks of LS_MR rows stay whole */
    int rc = (4 * nthr + npan - 1) / npan;
    const int blocks = (M + LS_MR - 1) / LS_MR;
    if (rc > blocks) rc = blocks;
    if (rc < 1) rc = 1;
    const long ntask = (long)npan * rc;
    const size_t per = (size_t)2 * LS_NR * K + (size_t)LS_MR * K;   /* Wr, Wt, X tail */
    sdc_arena_mark mk = sdc_arena_get_mark(a);
    float *scratch = sdc_arena_f32(a, per * (size_t)nthr);
    if (!scratch) return 0;
    int failed = 0;
    #pragma omp parallel num_threads(nthr) if (nthr > 1 && ntask > 1)
    {
        float *Wr = scratch + per * (size_t)omp_get_thread_num(), *Wt = Wr + (size_t)LS_NR * K,
              *Xt = Wt + (size_t)LS_NR * K;
        #pragma omp for schedule(dynamic, 1)   /* a slower core (a shared VM's) takes fewer panels */
        for (long t = 0; t < ntask; t++) {
            int bad;
            #pragma omp atomic read
            bad = failed;
            if (bad) continue;
            const int p = (int)(t / rc), c = (int)(t % rc);
            const int p0 = p * LS_NR, np = N - p0 < LS_NR ? N - p0 : LS_NR;
            const int m0 = (int)((long)blocks * c / rc) * LS_MR, m1 = c == rc - 1 ? M : (int)((long)blocks * (c + 1) / rc) * LS_MR;
            if (rows(ctx, Wr, p0, np)) {
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            ls_transpose(Wt, Wr, np, (size_t)K);
            const float *bp = b ? b + p0 : NULL;
            int m = m0;
            for (; m + LS_MR <= m1; m += LS_MR)
                ls_kernel(out + (size_t)m * N + p0, (size_t)N, in + (size_t)m * K, (size_t)K, Wt, bp, acc, LS_MR, np);
            if (m < m1) {   /* the last rows, padded to a whole block */
                memcpy(Xt, in + (size_t)m * K, (size_t)(m1 - m) * K * sizeof(float));
                memset(Xt + (size_t)(m1 - m) * K, 0, (size_t)(LS_MR - (m1 - m)) * K * sizeof(float));
                ls_kernel(out + (size_t)m * N + p0, (size_t)N, Xt, (size_t)K, Wt, bp, acc, m1 - m, np);
            }
        }
    }
    sdc_arena_reset(a, mk);
    return !failed;
}

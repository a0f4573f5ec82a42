/* bf16.c — the opt-in bf16 GEMMs: operands rounded to bf16 (round to nearest even), products
 * summed in f32. One micro-kernel shape serves the Linear layers and the Winograd convs:
 *
 *   C[r, j] (+)= Σ_kp  A[kp][r].lo·B[kp][j].lo + A[kp][r].hi·B[kp][j].hi      r < 12, j < 32
 *
 * where every A and B word is a pair of bf16 values of two consecutive k (k = 2kp low half, 2kp+1
 * high half): A in 12-row panels [kp][12], B in rows of words [kp][ldb]. That is the operand
 * layout of vdpbf16ps (AVX512-BF16: 32 multiply-adds an instruction, 2x the f32 FMA rate), whose
 * kernel is chosen at run time when the CPU has it; the plain-C kernel computes the same sums in
 * the same order (each bf16 product is exact in f32: hi product added first, then lo, as the
 * instruction is specified) and always runs in the tests. SDC_BF16=plain in the environment
 * forces the plain kernel. No AMX kernel: it could not be tested here (see README).
 *
 * Rounding: f32 -> bf16 round to nearest even, NaN stays (quiet) NaN, denormal inputs become
 * (signed) zero as vcvtne2ps2bf16 makes them, so both paths round the same inputs to the same
 * bits. */
#include "kernels/kernels.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define BF_X86 1
#else
#define BF_X86 0
#endif

#define BF_RO 12            /* rows of C a micro-kernel block makes (A panel height) */
#define BF_CO 32            /* columns of C a block makes at most (two vectors of 16) */

/* ---------------------------------------------------------------------------------------------
 * Rounding */

uint16_t kint_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   /* quiet NaN */
    if (!(u & 0x7f800000u)) return (uint16_t)((u >> 16) & 0x8000);              /* denormal: ±0 */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline uint32_t pair_plain(float lo, float hi) {
    return (uint32_t)kint_bf16_round(lo) | (uint32_t)kint_bf16_round(hi) << 16;
}

static inline float bf_lo(uint32_t w) { uint32_t u = w << 16; float f; memcpy(&f, &u, 4); return f; }
static inline float bf_hi(uint32_t w) { uint32_t u = w & 0xffff0000u; float f; memcpy(&f, &u, 4); return f; }

/* ---------------------------------------------------------------------------------------------
 * Micro-kernels: C[r·ldc + j] = Σ (A·B) (+ bias[j]) (+ C when acc), r < nr <= 12, j < nc <= 32;
 * a[kp·12 + r], b[kp·ldb + j] (b readable for j < 16·ceil(nc/16)). */

typedef void (*bf_block_fn)(float *C, size_t ldc, const uint32_t *a, const uint32_t *b, size_t ldb, int KP,
                            int nr, int nc, const float *bias, int acc);

static void block_plain(float *C, size_t ldc, const uint32_t *a, const uint32_t *b, size_t ldb, int KP, int nr,
                        int nc, const float *bias, int acc) {
    for (int r = 0; r < nr; r++)
        for (int j = 0; j < nc; j++) {
            float s = 0.0f;
            for (int kp = 0; kp < KP; kp++) {
                const uint32_t x = a[(size_t)kp * BF_RO + r], y = b[(size_t)kp * ldb + j];
                s += bf_hi(x) * bf_hi(y);
                s += bf_lo(x) * bf_lo(y);
            }
            if (bias) s += bias[j];
            float *c = C + (size_t)r * ldc + j;
            *c = acc ? *c + s : s;
        }
}

#if BF_X86
#define BF_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

static inline __attribute__((always_inline)) BF_TARGET void
block_avx_nv(float *C, size_t ldc, const uint32_t *a, const uint32_t *b, size_t ldb, int KP, int nr, int nc,
             const float *bias, int acc, const int NV) {
    __m512 c[BF_RO][2];
    #pragma GCC unroll 12
    for (int r = 0; r < BF_RO; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int kp = 0; kp < KP; kp++, a += BF_RO, b += ldb) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
        const __m512bh b1 = NV > 1 ? (__m512bh)_mm512_loadu_si512(b + 16) : b0;
        #pragma GCC unroll 12
        for (int r = 0; r < BF_RO; r++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r]);
            c[r][0] = _mm512_dpbf16_ps(c[r][0], x, b0);
            if (NV > 1) c[r][1] = _mm512_dpbf16_ps(c[r][1], x, b1);
        }
    }
    const int n0 = nc < 16 ? nc : 16, n1 = nc - 16 > 0 ? nc - 16 : 0;
    const __mmask16 m0 = (__mmask16)((1u << n0) - 1), m1 = (__mmask16)((1u << n1) - 1);
    const __m512 bb0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bb1 = bias && NV > 1 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < nr; r++) {
        float *d = C + (size_t)r * ldc;
        __m512 v0 = c[r][0], v1 = c[r][1];
        if (bias) { v0 = _mm512_add_ps(v0, bb0); if (NV > 1) v1 = _mm512_add_ps(v1, bb1); }
        if (acc) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), v0);
            if (NV > 1) v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), v1);
        }
        _mm512_mask_storeu_ps(d, m0, v0);
        if (NV > 1) _mm512_mask_storeu_ps(d + 16, m1, v1);
    }
}

BF_TARGET static void block_avx(float *C, size_t ldc, const uint32_t *a, const uint32_t *b, size_t ldb, int KP,
                                int nr, int nc, const float *bias, int acc) {
    if (nc > 16) block_avx_nv(C, ldc, a, b, ldb, KP, nr, nc, bias, acc, 2);
    else block_avx_nv(C, ldc, a, b, ldb, KP, nr, nc, bias, acc, 1);
}

/* dst[i] = pair(lo[i], hi[i]) for i < n (n <= 16), through vcvtne2ps2bf16 + a word interleave. */
BF_TARGET static void pairs_avx(uint32_t *dst, const float *lo, const float *hi, int n) {
    const __mmask16 m = (__mmask16)((1u << n) - 1);
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m, hi), _mm512_maskz_loadu_ps(m, lo));
    _mm512_mask_storeu_epi32(dst, m, _mm512_permutexvar_epi16(idx, (__m512i)v));
}

/* dst[i] = pair(src[2i], src[2i+1]) for i < n (n <= 16): consecutive floats are pairs as they are. */
BF_TARGET static void rowpairs_avx(uint32_t *dst, const float *src, int n) {
    const int nf = 2 * n;
    const __mmask16 m0 = (__mmask16)((1u << (nf < 16 ? nf : 16)) - 1);
    const __mmask16 m1 = (__mmask16)((1u << (nf > 16 ? nf - 16 : 0)) - 1);
    __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, src + 16), _mm512_maskz_loadu_ps(m0, src));
    _mm512_mask_storeu_epi32(dst, (__mmask16)((1u << n) - 1), (__m512i)v);
}
#endif

static void pairs_plain(uint32_t *dst, const float *lo, const float *hi, int n) {
    for (int i = 0; i < n; i++) dst[i] = pair_plain(lo[i], hi[i]);
}

static void rowpairs_plain(uint32_t *dst, const float *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = pair_plain(src[2 * i], src[2 * i + 1]);
}

/* ---------------------------------------------------------------------------------------------
 * The path: chosen once (the CPU, then SDC_BF16=plain), or by k_bf16_select. */

typedef struct bf_path {
    const char *name;
    bf_block_fn block;
    void (*pairs)(uint32_t *, const float *, const float *, int);
    void (*rowpairs)(uint32_t *, const float *, int);
} bf_path;

static const bf_path PATH_PLAIN = {"plain C", block_plain, pairs_plain, rowpairs_plain};
#if BF_X86
static const bf_path PATH_AVX = {"avx512_bf16 (vdpbf16ps)", block_avx, pairs_avx, rowpairs_avx};
#endif
static const bf_path *path = &PATH_PLAIN;
static pthread_once_t path_once = PTHREAD_ONCE_INIT;

int k_bf16_hw(void) {
#if BF_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
#else
    return 0;
#endif
}

/* AVX-512 kernels may run: in a portable build when kint_isa_avx512 says so (the OS saves the
 * AVX-512 state, SDC_CPU=avx2 is not set: kernels/isa.h); in a native build always (k_bf16_hw
 * then decides from the CPU's flags). */
static int avx512_ok(void) {
#if defined(SDC_ISA_DISPATCH)
    return kint_isa_avx512();
#else
    return 1;
#endif
}

static void path_init(void) {
    const char *env = getenv("SDC_BF16");
#if BF_X86
    if (k_bf16_hw() && avx512_ok() && !(env && !strcmp(env, "plain"))) path = &PATH_AVX;
#endif
    (void)env;
}

static const bf_path *cur(void) {
    pthread_once(&path_once, path_init);
    return path;
}

const char *k_bf16_path_name(void) { return cur()->name; }

int k_bf16_select(const char *name) {
    cur();
    if (!strcmp(name, "plain")) { path = &PATH_PLAIN; return 0; }
#if BF_X86
    if (!strcmp(name, "avx512_bf16") && k_bf16_hw() && avx512_ok()) { path = &PATH_AVX; return 0; }
#endif
    return -1;
}

void kint_bf16_block(float *C, size_t ldc, const uint32_t *a, const uint32_t *b, size_t ldb, int KP, int nr, int nc,
                     const float *bias, int acc) {
    cur()->block(C, ldc, a, b, ldb, KP, nr, nc, bias, acc);
}

void kint_bf16_pairs(uint32_t *dst, const float *lo, const float *hi, int n) {
    const bf_path *p = cur();
    for (int i = 0; i < n; i += 16) p->pairs(dst + i, lo + i, hi + i, n - i < 16 ? n - i : 16);
}

/* ---------------------------------------------------------------------------------------------
 * Linear */

size_t k_linear_bf16_words(int N, int K) {
    return (size_t)((N + BF_CO - 1) / BF_CO) * ((K + 1) / 2) * BF_CO;
}

/* Wp[np][kp][j] = pair(w[n][2kp], w[n][2kp+1]), n = np·32 + j; zero past N and K. */
void k_linear_bf16_pack(uint32_t *Wp, const float *w, int N, int K) {
    const int KP = (K + 1) / 2, NP = (N + BF_CO - 1) / BF_CO;
    for (int np = 0; np < NP; np++)
        for (int j = 0; j < BF_CO; j++) {
            const int n = np * BF_CO + j;
            uint32_t *d = Wp + (size_t)np * KP * BF_CO + j;
            for (int kp = 0; kp < KP; kp++) {
                const float lo = n < N ? w[(size_t)n * K + 2 * kp] : 0.0f;
                const float hi = n < N && 2 * kp + 1 < K ? w[(size_t)n * K + 2 * kp + 1] : 0.0f;
                d[(size_t)kp * BF_CO] = pair_plain(lo, hi);
            }
        }
}

/* A panel: Ap[kp][r] = pair(in[m0 + r][2kp], ..[2kp+1]) for r < nr, zero rows up to 12; row
 * scratch t [12][KP]. */
static void pack_rows(uint32_t *Ap, uint32_t *t, const float *in, int m0, int nr, int K, int KP) {
    const bf_path *p = cur();
    for (int r = 0; r < BF_RO; r++) {
        uint32_t *tr = t + (size_t)r * KP;
        if (r >= nr) { memset(tr, 0, (size_t)KP * 4); continue; }
        const float *x = in + (size_t)(m0 + r) * K;
        int kp = 0;
        for (; kp + 16 <= K / 2; kp += 16) p->rowpairs(tr + kp, x + 2 * kp, 16);
        if (kp < K / 2) p->rowpairs(tr + kp, x + 2 * kp, K / 2 - kp);
        if (K % 2) tr[KP - 1] = pair_plain(x[K - 1], 0.0f);
    }
    for (int kp = 0; kp < KP; kp++)
        for (int r = 0; r < BF_RO; r++) Ap[(size_t)kp * BF_RO + r] = t[(size_t)r * KP + kp];
}

/* Row panels a task takes (a chunk of A that stays in L2 while the B panels stream). */
#define LIN_CHUNK_PANELS 16

int k_linear_bf16(sdc_arena *a, float *out, const float *in, const uint32_t *Wp, const float *b, int M, int K,
                  int N, int acc) {
    if (M <= 0 || N <= 0 || K <= 0) return 1;
    const int KP = (K + 1) / 2, MP = (M + BF_RO - 1) / BF_RO, NP = (N + BF_CO - 1) / BF_CO;
    const int nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
    sdc_arena_mark mk = sdc_arena_get_mark(a);
    uint32_t *Ap = sdc_arena_alloc(a, (size_t)MP * KP * BF_RO * 4);
    uint32_t *tmp = sdc_arena_alloc(a, (size_t)nthr * BF_RO * KP * 4);
    if (!Ap || !tmp) { sdc_arena_reset(a, mk); return 0; }
    #pragma omp parallel for num_threads(nthr) schedule(static)
    for (int mp = 0; mp < MP; mp++)
        pack_rows(Ap + (size_t)mp * KP * BF_RO, tmp + (size_t)omp_get_thread_num() * BF_RO * KP, in, mp * BF_RO,
                  M - mp * BF_RO < BF_RO ? M - mp * BF_RO : BF_RO, K, KP);
    /* tasks: chunks of row panels x groups of column panels, at least 2 a thread when possible */
    const int nch = (MP + LIN_CHUNK_PANELS - 1) / LIN_CHUNK_PANELS;
    int ng = 1;
    while ((long)nch * ng < 2L * nthr && ng < NP) ng++;
    const int gp = (NP + ng - 1) / ng;
    const bf_block_fn blk = cur()->block;
    #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1) collapse(2)
    for (int ch = 0; ch < nch; ch++)
        for (int g = 0; g < ng; g++) {
            const int mp1 = (ch + 1) * LIN_CHUNK_PANELS < MP ? (ch + 1) * LIN_CHUNK_PANELS : MP;
            const int np1 = (g + 1) * gp < NP ? (g + 1) * gp : NP;
            for (int np = g * gp; np < np1; np++) {
                const int n0 = np * BF_CO, nc = N - n0 < BF_CO ? N - n0 : BF_CO;
                const uint32_t *bp = Wp + (size_t)np * KP * BF_CO;
                for (int mp = ch * LIN_CHUNK_PANELS; mp < mp1; mp++) {
                    const int m0 = mp * BF_RO, nr = M - m0 < BF_RO ? M - m0 : BF_RO;
                    blk(out + (size_t)m0 * N + n0, (size_t)N, Ap + (size_t)mp * KP * BF_RO, bp, BF_CO, KP, nr, nc,
                        b ? b + n0 : NULL, acc);
                }
            }
        }
    sdc_arena_reset(a, mk);
    return 1;
}

/* vmath.h — the vector layer of the element-wise kernels: a float vector type of VLEN lanes
 * (AVX-512, else AVX2+FMA, else one plain float) with load/store/arith and exp/erfc.
 * Internal to kernels/ (static inline). exp: Cephes' expf polynomial, ~1 ulp; erfc: Numerical
 * Recipes' erfcc Chebyshev fit, relative error < 1.2e-7 for all x (also in the far tail). */
#ifndef SDC_VMATH_H
#define SDC_VMATH_H

#include <math.h>
#include <stddef.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#define VM_LOG2E 1.44269504088896341f
#define VM_LN2_HI 0.693359375f
#define VM_LN2_LO -2.12194440e-4f

#if defined(__AVX512F__)
#define VLEN 16
typedef __m512 vf;
static inline vf vset(float x) { return _mm512_set1_ps(x); }
static inline vf vload(const float *p) { return _mm512_loadu_ps(p); }
static inline void vstore(float *p, vf x) { _mm512_storeu_ps(p, x); }
static inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }    /* a·b + c */
static inline vf vfnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }  /* c - a·b */
static inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline float vhsum(vf a) { return _mm512_reduce_add_ps(a); }
static inline float vhmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline vf vround(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vf vscale2(vf p, vf n) { return _mm512_scalef_ps(p, n); }   /* p · 2^n */
/* where x < 0: 2 - e, else e */
static inline vf vreflect2(vf x, vf e) {
    __mmask16 m = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(e, m, _mm512_set1_ps(2.0f), e);
}
static inline vf vabs(vf x) { return _mm512_abs_ps(x); }
#elif defined(__AVX2__) && defined(__FMA__)
#define VLEN 8
typedef __m256 vf;
static inline vf vset(float x) { return _mm256_set1_ps(x); }
static inline vf vload(const float *p) { return _mm256_loadu_ps(p); }
static inline void vstore(float *p, vf x) { _mm256_storeu_ps(p, x); }
static inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vfnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline float vhsum(vf a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static inline float vhmax(vf a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
static inline vf vround(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* p · 2^n for integral n in [-126, 127] (the callers clamp); below that 0 */
static inline vf vscale2(vf p, vf n) {
    __m256 under = _mm256_cmp_ps(n, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
    n = _mm256_max_ps(n, _mm256_set1_ps(-126.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
static inline vf vreflect2(vf x, vf e) {
    __m256 m = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(e, _mm256_sub_ps(_mm256_set1_ps(2.0f), e), m);
}
static inline vf vabs(vf x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
#else
#define VLEN 1
#define VM_SCALAR 1
typedef float vf;
static inline vf vset(float x) { return x; }
static inline vf vload(const float *p) { return *p; }
static inline void vstore(float *p, vf x) { *p = x; }
static inline vf vadd(vf a, vf b) { return a + b; }
static inline vf vsub(vf a, vf b) { return a - b; }
static inline vf vmul(vf a, vf b) { return a * b; }
static inline vf vdiv(vf a, vf b) { return a / b; }
static inline vf vfma(vf a, vf b, vf c) { return fmaf(a, b, c); }
static inline vf vfnma(vf a, vf b, vf c) { return fmaf(-a, b, c); }
static inline vf vmax(vf a, vf b) { return a > b ? a : b; }
static inline vf vmin(vf a, vf b) { return a < b ? a : b; }
static inline float vhsum(vf a) { return a; }
static inline float vhmax(vf a) { return a; }
#endif

#ifdef VM_SCALAR
static inline vf vexp(vf x) { return expf(x); }
static inline vf vexp2arg(vf a, vf b) { return expf(a + b); }
static inline vf verfc_scaled(vf x, float s, float s2) { (void)s2; return erfcf(x * s); }
static inline vf verfc(vf x) { return erfcf(x); }
#else
/* exp(a + b), |b| small next to |a|: the reduction r = a - n·ln2 is exact (Cody-Waite) before
 * b is added, so a large a loses nothing to rounding a + b first. -inf and below -104 give 0. */
static inline vf vexp2arg(vf a, vf b) {
    vf x = vadd(a, b);
#if VLEN == 16
    x = vmin(vmax(x, vset(-104.0f)), vset(88.7228f));
    a = vmin(vmax(a, vset(-104.0f)), vset(88.7228f));
#else
    x = vmin(vmax(x, vset(-127.0f * 0.6931472f)), vset(88.0f));   /* n stays in [-127, 127] */
    a = vmin(vmax(a, vset(-127.0f * 0.6931472f)), vset(88.0f));
#endif
    vf n = vround(vmul(x, vset(VM_LOG2E)));
    vf r = vadd(vfnma(n, vset(VM_LN2_LO), vfnma(n, vset(VM_LN2_HI), a)), b);
    vf p = vset(1.9875691500e-4f);
    p = vfma(p, r, vset(1.3981999507e-3f));
    p = vfma(p, r, vset(8.3334519073e-3f));
    p = vfma(p, r, vset(4.1665795894e-2f));
    p = vfma(p, r, vset(1.6666665459e-1f));
    p = vfma(p, r, vset(5.0000001201e-1f));
    p = vfma(p, vmul(r, r), vadd(r, vset(1.0f)));
    return vscale2(p, n);
}
static inline vf vexp(vf x) { return vexp2arg(x, vset(0.0f)); }

/* erfc(s·x) = t·exp(-z² - 1.26551223 + t·P(t)), t = 1/(1 + z/2), z = |s·x|; 2 - that for s·x < 0
 * (s > 0). z² is taken as x²·s2 with s2 = s² exact (1 or 1/2) and x² split into hi + lo by FMA,
 * so the exponent keeps full precision in the far tail (|z| up to 10). */
static inline vf verfc_scaled(vf x, float s, float s2) {
    vf z = vmin(vmul(vabs(x), vset(s)), vset(10.5f));   /* erfc(10.5) < 1e-49: 0 in float */
    vf xc = vmin(vabs(x), vset(10.5f / s));
    vf t = vdiv(vset(1.0f), vfma(z, vset(0.5f), vset(1.0f)));
    vf p = vset(0.17087277f);
    p = vfma(p, t, vset(-0.82215223f));
    p = vfma(p, t, vset(1.48851587f));
    p = vfma(p, t, vset(-1.13520398f));
    p = vfma(p, t, vset(0.27886807f));
    p = vfma(p, t, vset(-0.18628806f));
    p = vfma(p, t, vset(0.09678418f));
    p = vfma(p, t, vset(0.37409196f));
    p = vfma(p, t, vset(1.00002368f));
    p = vfma(p, t, vset(-1.26551223f));
    vf hi = vmul(xc, xc), lo = vfma(xc, xc, vsub(vset(0.0f), hi));   /* x² = hi + lo exactly */
    hi = vmul(hi, vset(s2));
    lo = vmul(lo, vset(s2));
    vf e = vmul(t, vexp2arg(vsub(vset(0.0f), hi), vsub(p, lo)));
    return vreflect2(x, e);
}
static inline vf verfc(vf x) { return verfc_scaled(x, 1.0f, 1.0f); }
#endif

/* Float partial sums cover at most this many elements before they are folded into a double. */
#define VSUM_RUN 1024

/* Σ x[i] and Σ (x[i] - mean)² over n floats, in double (the group/layer norm statistics;
 * k_sum/k_sum_sq_centred give them to the VAE, so its fused GroupNorm matches k_group_norm). */
static inline double vsum_span(const float *x, size_t n) {
    double s = 0.0;
    size_t i = 0;
    while (i + VLEN <= n) {
        vf a0 = vset(0.0f), a1 = vset(0.0f);
        size_t end = i + VSUM_RUN < n ? i + VSUM_RUN : n;
        for (; i + 2 * VLEN <= end; i += 2 * VLEN) { a0 = vadd(a0, vload(x + i)); a1 = vadd(a1, vload(x + i + VLEN)); }
        for (; i + VLEN <= end; i += VLEN) a0 = vadd(a0, vload(x + i));
        s += vhsum(vadd(a0, a1));
    }
    for (; i < n; i++) s += x[i];
    return s;
}

static inline double vsumsq_span(const float *x, size_t n, float mean) {
    double s = 0.0;
    size_t i = 0;
    vf m = vset(mean);
    while (i + VLEN <= n) {
        vf a0 = vset(0.0f), a1 = vset(0.0f);
        size_t end = i + VSUM_RUN < n ? i + VSUM_RUN : n;
        for (; i + 2 * VLEN <= end; i += 2 * VLEN) {
            vf d0 = vsub(vload(x + i), m), d1 = vsub(vload(x + i + VLEN), m);
            a0 = vfma(d0, d0, a0);
            a1 = vfma(d1, d1, a1);
        }
        for (; i + VLEN <= end; i += VLEN) { vf d = vsub(vload(x + i), m); a0 = vfma(d, d, a0); }
        s += vhsum(vadd(a0, a1));
    }
    for (; i < n; i++) { double d = x[i] - mean; s += d * d; }
    return s;
}


/* y = x·sc + sh, then x·σ(x) if silu; n floats (y may equal x). The GroupNorm apply step of
 * k_group_norm and of the VAE's fused GroupNorm + SiLU. */
static inline void vaffine_span(float *y, const float *x, size_t n, float sc, float sh, int silu) {
    vf a = vset(sc), b = vset(sh);
    size_t i = 0;
    if (silu) {
        for (; i + VLEN <= n; i += VLEN) {
            vf v = vfma(vload(x + i), a, b);
            vstore(y + i, vdiv(v, vadd(vset(1.0f), vexp(vsub(vset(0.0f), v)))));
        }
        if (i < n) {
            float t[VLEN] = {0};
            for (size_t j = i; j < n; j++) t[j - i] = x[j];
            vf v = vfma(vload(t), a, b);
            vstore(t, vdiv(v, vadd(vset(1.0f), vexp(vsub(vset(0.0f), v)))));
            for (size_t j = i; j < n; j++) y[j] = t[j - i];
        }
        return;
    }
    for (; i + VLEN <= n; i += VLEN) vstore(y + i, vfma(vload(x + i), a, b));
    for (; i < n; i++) y[i] = x[i] * sc + sh;
}

#endif

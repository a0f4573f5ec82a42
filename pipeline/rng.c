/* rng.c — PyTorch's CPU generator (torch 1.13, CPUGeneratorImpl) reproduced bit for bit.
 *
 * Owns: the mt19937 engine, the uniform draws PyTorch derives from it and torch.randn's two
 * float32 paths. Does not own: anything a sampler does with the numbers.
 *
 *   torch.manual_seed(s)  → mt19937 seeded with the low 32 bits of s, cached normals dropped.
 *   torch.randn(n), n >= 16 (contiguous float32): normal_fill_AVX2 — n float uniforms
 *       u = (r32 & 0xFFFFFF) · 2⁻²⁴, then Box-Muller on blocks of 16 (u1 = 1 − u[j], u2 = u[j+8],
 *       j < 8) with avx_mathfun's cephes-style log256_ps / sincos256_ps in float32; when
 *       n % 16 != 0 the last 16 values are drawn again and transformed again.
 *   torch.randn(n), n < 16: at::normal_distribution<double> per element — 53-bit uniforms from
 *       random64() (two engine words, first = high), r = √(−2·log(1 − u2)), θ = 2π·u1,
 *       returns r·cos θ and caches r·sin θ for the next scalar draw.
 *
 * The reference fixtures match PyTorch's AVX2 kernel (its default on any AVX2 machine), so the
 * vector math functions are emulated lane by lane here in plain float arithmetic: every
 * intrinsic becomes one rounded float operation, in the same order (no FMA contraction). */
#include "pipeline/rng.h"

#include <math.h>
#include <string.h>

/* Every float operation below must round on its own, as each AVX intrinsic does: no FMA
 * contraction (GCC contracts by default in gnu11 mode when -march allows FMA). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ------------------------------------------------------------------------------------------ */
/* mt19937 (at::mt19937: the standard 32-bit Mersenne Twister)                                 */

enum { MT_N = 624, MT_M = 397 };

void sdc_rng_seed(sdc_rng *r, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = MT_N;
}

static void mt_twist(sdc_rng *r) {
    uint32_t *mt = r->mt;
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (mt[i] & 0x80000000u) | (mt[(i + 1) % MT_N] & 0x7fffffffu);
        uint32_t v = mt[(i + MT_M) % MT_N] ^ (y >> 1);
        if (y & 1u) v ^= 0x9908b0dfu;
        mt[i] = v;
    }
    r->mti = 0;
}

static uint32_t mt_next(sdc_rng *r) {
    if (r->mti >= MT_N) mt_twist(r);
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* at::uniform_real_distribution<float>(0, 1): 24 random bits → [0, 1). */
static float uniform_f32(sdc_rng *r) {
    return (float)(mt_next(r) & 0xffffffu) * (1.0f / 16777216.0f);
}

/* at::uniform_real_distribution<double>(0, 1): random64() = (first << 32) | second, 53 bits. */
static double uniform_f64(sdc_rng *r) {
    uint64_t hi = mt_next(r), lo = mt_next(r);
    uint64_t v = (hi << 32) | lo;
    return (double)(v & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------------------------------------ */
/* avx_mathfun (Pommier / Garberoglio, cephes polynomials), one lane, float32 throughout        */

static float f_from_bits(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static uint32_t f_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

/* log256_ps on one lane; x > 0 here (x = 1 − u ∈ (0, 1]). */
static float lane_log(float x) {
    const float one = 1.0f;
    int invalid = !(x > 0.0f);
    float mn = f_from_bits(0x00800000u);
    if (!(x >= mn)) x = mn;   /* _mm256_max_ps(x, min_norm_pos): returns the 2nd operand on NaN */
    int32_t imm0 = (int32_t)(f_bits(x) >> 23);
    x = f_from_bits((f_bits(x) & ~0x7f800000u) | f_bits(0.5f));
    imm0 -= 0x7f;
    float e = (float)imm0;
    e = e + one;
    int mask = x < 0.707106781186547524f;
    float tmp = mask ? x : 0.0f;
    x = x - one;
    e = e - (mask ? one : 0.0f);
    x = x + tmp;

    float z = x * x;
    float y = 7.0376836292E-2f;
    y = fmaf(y, x, -1.1514610310E-1f);
    y = fmaf(y, x, 1.1676998740E-1f);
    y = fmaf(y, x, -1.2420140846E-1f);
    y = fmaf(y, x, 1.4249322787E-1f);
    y = fmaf(y, x, -1.6668057665E-1f);
    y = fmaf(y, x, 2.0000714765E-1f);
    y = fmaf(y, x, -2.4999993993E-1f);
    y = fmaf(y, x, 3.3333331174E-1f);
    y = y * x;
    tmp = e * -2.12194440e-4f;
    y = fmaf(y, z, tmp);                 /* y·z + e·q1 */
    y = fmaf(-z, 0.5f, y);               /* y − z·0.5 */
    x = x + y;
    x = fmaf(e, 0.693359375f, x);        /* x + e·q2 */
    return invalid ? f_from_bits(0xffffffffu) : x;
}

/* sincos256_ps on one lane. */
static void lane_sincos(float x, float *s, float *c) {
    uint32_t sign_sin = f_bits(x) & 0x80000000u;
    x = f_from_bits(f_bits(x) & 0x7fffffffu);
    float y = x * 1.27323954473516f;                /* 4/π */
    int32_t j = (int32_t)y;                         /* cvttps: truncation */
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t swap_sin = (uint32_t)(j & 4) << 29;
    int poly2 = (j & 2) == 0;                       /* poly_mask: sine polynomial for sin */
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sin;

    float z = x * x;
    float p = 2.443315711809948E-005f;              /* cosine polynomial */
    p = fmaf(p, z, -1.388731625493765E-003f);
    p = fmaf(p, z, 4.166664568298827E-002f);
    p = p * z;
    float tmp = z * 0.5f;
    p = fmaf(p, z, -tmp);                /* p·z − z·0.5 */
    p = p + 1.0f;

    float q = -1.9515295891E-4f;                    /* sine polynomial */
    q = fmaf(q, z, 8.3321608736E-3f);
    q = fmaf(q, z, -1.6666654611E-1f);
    q = q * z;
    q = fmaf(q, x, x);                   /* q·x + x */

    /* ysin2 = mask & q, ysin1 = ~mask & p; cos part = (p − ysin1) + (q − ysin2) */
    float ysin2 = poly2 ? q : 0.0f, ysin1 = poly2 ? 0.0f : p;
    float q2 = q - ysin2, p2 = p - ysin1;
    float vs = ysin1 + ysin2, vc = p2 + q2;
    *s = f_from_bits(f_bits(vs) ^ sign_sin);
    *c = f_from_bits(f_bits(vc) ^ sign_cos);
}

/* normal_fill_16_AVX2 with mean 0, std 1 (fmadd(n, 1, 0) = n). */
static void normal_fill_16(float *d) {
    const float two_pi = (float)(2.0f * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float lg = lane_log(u1);
        float radius = sqrtf(-2.0f * lg);
        float theta = two_pi * u2;
        float st, ct;
        lane_sincos(theta, &st, &ct);
        d[j] = radius * ct + 0.0f;
        d[j + 8] = radius * st + 0.0f;
    }
}

/* ------------------------------------------------------------------------------------------ */

/* at::normal_distribution<double>(0, 1) with the generator's cached second value. */
static double normal_f64(sdc_rng *r) {
    if (r->has_next_normal) {
        r->has_next_normal = 0;
        return r->next_normal;
    }
    double u1 = uniform_f64(r), u2 = uniform_f64(r);
    double rad = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    r->next_normal = rad * sin(theta);
    r->has_next_normal = 1;
    return rad * cos(theta);
}

/* PyTorch's two paths for a contiguous float32 tensor (see the file comment). */
enum { SDC_RNG_VEC = 16 };   /* normal_fill's block: 8 Box-Muller pairs */

void sdc_rng_randn(sdc_rng *r, float *out, size_t n) {
    if (n < SDC_RNG_VEC) {
        for (size_t i = 0; i < n; i++) out[i] = (float)normal_f64(r);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = uniform_f32(r);
    for (size_t i = 0; i + SDC_RNG_VEC <= n; i += SDC_RNG_VEC) normal_fill_16(out + i);
    if (n % SDC_RNG_VEC != 0) {
        float *d = out + n - SDC_RNG_VEC;
        for (size_t i = 0; i < SDC_RNG_VEC; i++) d[i] = uniform_f32(r);
        normal_fill_16(d);
    }
}

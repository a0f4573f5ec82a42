/* convert.c — f16/bf16 <-> f32 element conversions: F16C/AVX2 vectors where the CPU has them,
 * exact scalar code (subnormals, inf, nan, round to nearest even) for the rest. */
#include "kernels/kernels.h"

#include <string.h>
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

static float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (man << 13));   /* inf / nan */
    if (exp == 0) {                                                            /* zero / subnormal */
        float f = (float)man * (1.0f / 16777216.0f);                           /* man · 2^-24 */
        return sign ? -f : f;
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

static uint16_t float_to_half(float f) {
    uint32_t u = bits_from_f32(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 | ((a >> 13) & 0x3ff) : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);           /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                            /* below 2^-14: subnormal */
        if (a < 0x33000000u) return (uint16_t)sign;                   /* below 2^-25: zero */
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000, shift = 126 - e;   /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = a - 0x38000000u;                                     /* rebias 127 -> 15 */
    uint32_t h = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

void k_f16_to_f32(float *dst, const void *src, size_t n) {
    const unsigned char *s = src;
    size_t i = 0;
#if defined(__F16C__) && defined(__AVX2__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
#endif
    for (; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = half_to_float(h); }
}

void k_bf16_to_f32(float *dst, const void *src, size_t n) {
    const unsigned char *s = src;
    size_t i = 0;
#if defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 2 * i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    for (; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = f32_from_bits((uint32_t)h << 16); }
}

void k_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
#if defined(__F16C__) && defined(__AVX2__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++) dst[i] = float_to_half(src[i]);
}

void k_f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = bits_from_f32(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) { dst[i] = (uint16_t)((u >> 16) | 0x40); continue; }  /* quiet nan */
        dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    }
}

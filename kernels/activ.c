/* activ.c — element-wise activations (SiLU, GELU, quick-GELU, ReLU, GEGLU), adds and scales, layout
 * moves (upsample, concat, NCHW <-> NHWC) and the sinusoidal timestep embedding. */
#include "kernels/isa.h"   /* first: compiled once per vector width (kernels/isa.h) */

#include <math.h>
#include <string.h>

#include "kernels/vmath.h"

/* Loops shorter than this stay on one thread: forking costs more than the work. */
#define PAR_MIN ((size_t)1 << 15)
/* Element-wise loops run in blocks of this many floats (a multiple of every VLEN). */
#define BLOCK 4096

static inline vf silu_v(vf x) { return vdiv(x, vadd(vset(1.0f), vexp(vsub(vset(0.0f), x)))); }
/* 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(-x/√2): no cancellation in the tail */
static inline vf gelu_v(vf x) { return vmul(vmul(vset(0.5f), x), verfc_scaled(vsub(vset(0.0f), x), (float)M_SQRT1_2, 0.5f)); }
static inline vf relu_v(vf x) { return vmax(vset(0.0f), x); }   /* NaN stays NaN, as in torch */
static inline vf quick_gelu_v(vf x) { return vdiv(x, vadd(vset(1.0f), vexp(vmul(x, vset(-1.702f))))); }

/* x[0..n) = f(x) in place, VLEN lanes at a time; the tail goes through a padded vector so every
 * element sees the same arithmetic. */
#define UNARY_KERNEL(name, f)                                                                  \
    static void name##_span(float *x, size_t n) {                                              \
        size_t i = 0;                                                                          \
        for (; i + VLEN <= n; i += VLEN) vstore(x + i, f(vload(x + i)));                       \
        if (i < n) {                                                                           \
            float t[VLEN] = {0};                                                               \
            for (size_t j = i; j < n; j++) t[j - i] = x[j];                                    \
            vstore(t, f(vload(t)));                                                            \
            for (size_t j = i; j < n; j++) x[j] = t[j - i];                                    \
        }                                                                                      \
    }                                                                                          \
    void KISA_NAME(k_##name)(float *x, size_t n) {                                             \
        KISA_VOID(k_##name, x, n);                                                             \
        size_t nb = (n + BLOCK - 1) / BLOCK;                                                   \
        _Pragma("omp parallel for schedule(static) if (n > PAR_MIN)")                          \
        for (size_t b = 0; b < nb; b++)                                                        \
            name##_span(x + b * BLOCK, b + 1 < nb ? BLOCK : n - b * BLOCK);                    \
    }

UNARY_KERNEL(silu, silu_v)
UNARY_KERNEL(gelu, gelu_v)
UNARY_KERNEL(quick_gelu, quick_gelu_v)
UNARY_KERNEL(relu, relu_v)

/* out[m, f] = in[m, f] · gelu(in[m, F + f]) */
void KISA_NAME(k_geglu)(float *out, const float *in, int M, int F) {
    KISA_VOID(k_geglu, out, in, M, F);
    #pragma omp parallel for schedule(static) if ((size_t)M * F > PAR_MIN)
    for (int m = 0; m < M; m++) {
        const float *h = in + (size_t)m * 2 * F, *g = h + F;
        float *o = out + (size_t)m * F;
        int f = 0;
        for (; f + VLEN <= F; f += VLEN) vstore(o + f, vmul(vload(h + f), gelu_v(vload(g + f))));
        if (f < F) {
            float th[VLEN] = {0}, tg[VLEN] = {0};
            for (int j = f; j < F; j++) { th[j - f] = h[j]; tg[j - f] = g[j]; }
            vstore(th, vmul(vload(th), gelu_v(vload(tg))));
            for (int j = f; j < F; j++) o[j] = th[j - f];
        }
    }
}

/* ---- The rest does not depend on the vector width: compiled once (in the baseline). */
#if !KISA_VARIANT

void k_upsample2x(float *out, const float *in, int N, int C, int H, int W) {
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)N * C; p++) {
        const float *s = in + (size_t)p * H * W;
        float *d = out + (size_t)p * 4 * H * W;
        for (int y = 0; y < H; y++) {
            float *r0 = d + (size_t)(2 * y) * 2 * W, *r1 = r0 + 2 * W;
            for (int x = 0; x < W; x++) r0[2 * x] = r0[2 * x + 1] = s[(size_t)y * W + x];
            memcpy(r1, r0, (size_t)2 * W * sizeof(float));
        }
    }
}

/* out[N,C,Ho,Wo] = in[N,C,H,W] resized by nearest neighbour as PyTorch's F.interpolate(size=...,
 * mode="nearest"): source index floor(dst * in / out), computed in integers. */
void k_upsample_nearest(float *out, const float *in, int N, int C, int H, int W, int Ho, int Wo) {
    if (Ho == 2 * H && Wo == 2 * W) { k_upsample2x(out, in, N, C, H, W); return; }
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)N * C; p++) {
        const float *s = in + (size_t)p * H * W;
        float *d = out + (size_t)p * Ho * Wo;
        for (int y = 0; y < Ho; y++) {
            const float *sr = s + (size_t)((int64_t)y * H / Ho) * W;
            float *dr = d + (size_t)y * Wo;
            for (int x = 0; x < Wo; x++) dr[x] = sr[(int64_t)x * W / Wo];
        }
    }
}

void k_concat_channels(float *out, const float *a, int Ca, const float *b, int Cb, int N, int HW) {
    for (int n = 0; n < N; n++) {
        memcpy(out + (size_t)n * (Ca + Cb) * HW, a + (size_t)n * Ca * HW, (size_t)Ca * HW * sizeof(float));
        memcpy(out + ((size_t)n * (Ca + Cb) + Ca) * HW, b + (size_t)n * Cb * HW, (size_t)Cb * HW * sizeof(float));
    }
}

/* A blocked transpose: out[R2, C2] = in[R2's transpose] per image, 32x32 blocks. */
static void transpose(float *out, const float *in, int rows, int cols) {
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r0 = 0; r0 < rows; r0 += 32)
        for (int c0 = 0; c0 < cols; c0 += 32)
            for (int r = r0; r < r0 + 32 && r < rows; r++)
                for (int c = c0; c < c0 + 32 && c < cols; c++)
                    out[(size_t)c * rows + r] = in[(size_t)r * cols + c];
}

void k_nchw_to_nhwc(float *out, const float *in, int N, int C, int HW) {
    for (int n = 0; n < N; n++) transpose(out + (size_t)n * C * HW, in + (size_t)n * C * HW, C, HW);
}

void k_nhwc_to_nchw(float *out, const float *in, int N, int C, int HW) {
    for (int n = 0; n < N; n++) transpose(out + (size_t)n * C * HW, in + (size_t)n * C * HW, HW, C);
}

void k_add(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void k_scale(float *x, float s, size_t n) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void k_add_channel_bias(float *x, const float *bias, int N, int C, int HW) {
    #pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (long p = 0; p < (long)N * C; p++) {
        float v = bias[p], *d = x + (size_t)p * HW;
        for (int i = 0; i < HW; i++) d[i] += v;
    }
}

/* Computed in f32 step by step, as diffusers' get_timestep_embedding does in torch. */
void k_timestep_embedding(float *out, const float *t, int N, int dim, int flip_sin_to_cos,
                          float freq_shift, float max_period) {
    int half = dim / 2;
    float nl = (float)-log((double)max_period), den = (float)half - freq_shift;
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * dim;
        for (int j = 0; j < half; j++) {
            float e = nl * (float)j;
            float arg = t[n] * expf(e / den);
            float s = sinf(arg), c = cosf(arg);
            o[j] = flip_sin_to_cos ? c : s;
            o[half + j] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}

#endif   /* !KISA_VARIANT */

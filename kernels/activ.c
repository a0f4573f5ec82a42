/* activ.c — element-wise activations (SiLU, GELU, quick-GELU, GEGLU), adds and scales, layout
 * moves (upsample, concat, NCHW <-> NHWC) and the sinusoidal timestep embedding. */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

/* Loops shorter than this stay on one thread: forking costs more than the work. */
#define PAR_MIN ((size_t)1 << 15)

void k_silu(float *x, size_t n) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

void k_gelu(float *x, size_t n) {   /* 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(-x/√2): no cancellation in the tail */
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * erfcf(-x[i] * (float)M_SQRT1_2);
}

void k_quick_gelu(float *x, size_t n) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

/* out[m, f] = in[m, f] * gelu(in[m, F + f]) */
void k_geglu(float *out, const float *in, int M, int F) {
    #pragma omp parallel for schedule(static) if ((size_t)M * F > PAR_MIN)
    for (int m = 0; m < M; m++) {
        const float *h = in + (size_t)m * 2 * F, *g = h + F;
        float *o = out + (size_t)m * F;
        for (int f = 0; f < F; f++) o[f] = h[f] * 0.5f * g[f] * erfcf(-g[f] * (float)M_SQRT1_2);
    }
}

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

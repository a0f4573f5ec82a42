/* conv.c — k_conv2d: 1x1 stride-1 convs as one GEMM per image; others as im2col over a tile of
 * output rows (never the whole layer) followed by one sgemm per tile. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <string.h>

#include "kernels/kernels_internal.h"

/* Largest im2col tile, in floats: 4 Mi floats = 16 MiB. A whole-layer buffer at 512x512 with
 * 128 channels would be 1152 x 262144 floats (1.2 GB); a tile of output rows bounds it. */
#define CONV_TILE_FLOATS ((size_t)4 << 20)

/* col[K = Cin*kh*kw, (r1-r0)*Wo] = patches of in[Cin,H,W] for output rows r0..r1-1. */
static void im2col_rows(float *col, const float *in, int Cin, int H, int W, int kh, int kw,
                        int stride, int pad_t, int pad_l, int Wo, int r0, int r1) {
    size_t ncols = (size_t)(r1 - r0) * Wo;
    for (int c = 0; c < Cin; c++)
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                float *dst = col + ((size_t)(c * kh + ky) * kw + kx) * ncols;
                const float *src = in + (size_t)c * H * W;
                for (int r = r0; r < r1; r++, dst += Wo) {
                    int iy = r * stride - pad_t + ky;
                    if (iy < 0 || iy >= H) { memset(dst, 0, (size_t)Wo * sizeof(float)); continue; }
                    const float *row = src + (size_t)iy * W;
                    for (int x = 0; x < Wo; x++) {
                        int ix = x * stride - pad_l + kx;
                        dst[x] = (ix >= 0 && ix < W) ? row[ix] : 0.0f;
                    }
                }
            }
}

/* out[Cout, rows*Wo] (row stride ldo) = bias broadcast, so the GEMM can accumulate (beta = 1). */
static void fill_bias(float *out, size_t ldo, const float *b, int Cout, size_t ncols) {
    for (int o = 0; o < Cout; o++) {
        float v = b ? b[o] : 0.0f;
        float *d = out + (size_t)o * ldo;
        for (size_t i = 0; i < ncols; i++) d[i] = v;
    }
}

/* The plain definition, for when the arena cannot give even one row of scratch. */
static void conv_direct(float *out, const float *in, const float *w, const float *b, int N, int Cin,
                        int H, int W, int Cout, int kh, int kw, int stride, int pad_t, int pad_l,
                        int Ho, int Wo) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Cout; o++)
            for (int y = 0; y < Ho; y++)
                for (int x = 0; x < Wo; x++) {
                    float s = b ? b[o] : 0.0f;
                    for (int c = 0; c < Cin; c++)
                        for (int ky = 0; ky < kh; ky++) {
                            int iy = y * stride - pad_t + ky;
                            if (iy < 0 || iy >= H) continue;
                            for (int kx = 0; kx < kw; kx++) {
                                int ix = x * stride - pad_l + kx;
                                if (ix < 0 || ix >= W) continue;
                                s += w[((size_t)(o * Cin + c) * kh + ky) * kw + kx] *
                                     in[((size_t)(n * Cin + c) * H + iy) * W + ix];
                            }
                        }
                    out[((size_t)(n * Cout + o) * Ho + y) * Wo + x] = s;
                }
}

void k_conv2d(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
              int N, int Cin, int H, int W, int Cout, int kh, int kw, int stride,
              int pad_t, int pad_l, int pad_b, int pad_r) {
    int Ho = (H + pad_t + pad_b - kh) / stride + 1, Wo = (W + pad_l + pad_r - kw) / stride + 1;
    size_t HWo = (size_t)Ho * Wo, HWi = (size_t)H * W;
    int K = Cin * kh * kw;
    kint_init();
    if (kh == 1 && kw == 1 && stride == 1 && !pad_t && !pad_l && !pad_b && !pad_r) {
        for (int n = 0; n < N; n++) {   /* out[n][Cout,HW] = w[Cout,Cin] · in[n][Cin,HW] + b */
            float *o = out + (size_t)n * Cout * HWo;
            fill_bias(o, HWo, b, Cout, HWo);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)HWo, Cin, 1.0f, w, Cin,
                        in + (size_t)n * Cin * HWi, (int)HWi, 1.0f, o, (int)HWo);
        }
        return;
    }
    size_t rows = CONV_TILE_FLOATS / ((size_t)K * Wo);
    if (rows < 1) rows = 1;
    if (rows > (size_t)Ho) rows = (size_t)Ho;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *col = sdc_arena_f32(a, (size_t)K * rows * Wo);
    if (!col) { rows = 1; col = sdc_arena_f32(a, (size_t)K * Wo); }
    if (!col) {   /* no scratch at all: the direct loop (slow, but the result is right) */
        conv_direct(out, in, w, b, N, Cin, H, W, Cout, kh, kw, stride, pad_t, pad_l, Ho, Wo);
        return;
    }
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * Cin * HWi;
        float *o = out + (size_t)n * Cout * HWo;
        for (int r0 = 0; r0 < Ho; r0 += (int)rows) {
            int r1 = r0 + (int)rows < Ho ? r0 + (int)rows : Ho;
            int ncols = (r1 - r0) * Wo;
            im2col_rows(col, x, Cin, H, W, kh, kw, stride, pad_t, pad_l, Wo, r0, r1);
            fill_bias(o + (size_t)r0 * Wo, HWo, b, Cout, (size_t)ncols);
            /* out[Cout, ncols] += w[Cout, K] · col[K, ncols] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, ncols, K, 1.0f, w, K,
                        col, ncols, 1.0f, o + (size_t)r0 * Wo, (int)HWo);
        }
    }
    sdc_arena_reset(a, m);
}

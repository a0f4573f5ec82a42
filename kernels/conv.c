/* conv.c — k_conv2d: 1x1 stride-1 convs as one GEMM per image; the others as im2col over a
 * tile of output pixels (never the whole layer) followed by a GEMM per tile. Big images: tiles
 * run on OpenMP threads, each with its own im2col scratch and a one-thread sgemm (OpenBLAS runs
 * single-threaded inside a parallel region), so im2col and GEMM both use every core. Small
 * images: one shared tile, im2col split over channels, the GEMM on all threads. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_internal.h"

/* A tile is at most this many output pixels of one image (GEMM N): wide enough for sgemm to run
 * near its peak, narrow enough that its im2col block (K x N floats; K = Cin·kh·kw up to 11520)
 * stays in L2/L3: at 1280 channels 11520 x 256 floats = 11.8 MB. */
#define CONV_TILE_COLS 512
/* ...and at most this many floats of im2col scratch per thread (32 MiB), whatever K is. */
#define CONV_TILE_FLOATS ((size_t)8 << 20)
/* Below this many output pixels per thread (all images), tiles would be too narrow for a fast
 * GEMM: the shared-tile path splits the work over output channels instead. */
#define CONV_SMALL_COLS 512

/* col[K = Cin·kh·kw, np] = patches of in[Cin,H,W] for output pixels p0 .. p0+np-1 (row-major
 * over Ho x Wo). Zero outside the padded image. */
static void im2col_tile(float *col, const float *in, int Cin, int H, int W, int kh, int kw, int stride,
                        int pad_t, int pad_l, int Wo, long p0, int np) {
    for (int c = 0; c < Cin; c++)
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                float *dst = col + ((size_t)(c * kh + ky) * kw + kx) * np;
                const float *src = in + (size_t)c * H * W;
                long p = p0, pend = p0 + np;
                while (p < pend) {   /* one output row segment at a time */
                    int y = (int)(p / Wo), x0 = (int)(p % Wo);
                    int x1 = pend - p < Wo - x0 ? x0 + (int)(pend - p) : Wo;
                    int iy = y * stride - pad_t + ky, n = x1 - x0;
                    if (iy < 0 || iy >= H) {
                        memset(dst, 0, (size_t)n * sizeof(float));
                    } else {
                        const float *row = src + (size_t)iy * W;
                        if (stride == 1) {   /* valid x: 0 <= x - pad_l + kx < W */
                            int lo = pad_l - kx, hi = W + pad_l - kx;
                            int a = lo > x0 ? (lo < x1 ? lo : x1) : x0, b = hi < x1 ? (hi > a ? hi : a) : x1;
                            for (int x = x0; x < a; x++) dst[x - x0] = 0.0f;
                            memcpy(dst + (a - x0), row + (a - pad_l + kx), (size_t)(b - a) * sizeof(float));
                            for (int x = b; x < x1; x++) dst[x - x0] = 0.0f;
                        } else {
                            for (int x = x0; x < x1; x++) {
                                int ix = x * stride - pad_l + kx;
                                dst[x - x0] = (ix >= 0 && ix < W) ? row[ix] : 0.0f;
                            }
                        }
                    }
                    dst += n;
                    p += n;
                }
            }
}

/* out[Cout, ncols] (row stride ldo) = bias broadcast, so the GEMM can accumulate (beta = 1). */
static void fill_bias(float *out, size_t ldo, const float *b, int Cout, size_t ncols) {
    for (int o = 0; o < Cout; o++) {
        float v = b ? b[o] : 0.0f;
        float *d = out + (size_t)o * ldo;
        for (size_t i = 0; i < ncols; i++) d[i] = v;
    }
}

/* The plain definition, for when the arena cannot give even one tile of scratch. */
static void conv_direct(float *out, const float *in, const float *w, const float *b, int N, int Cin,
                        int H, int W, int Cout, int kh, int kw, int stride, int pad_t, int pad_l,
                        int Ho, int Wo) {
    #pragma omp parallel for collapse(2) schedule(static)
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

/* 1x1, stride 1, no padding: out[n][Cout,HW] = w[Cout,Cin] · in[n][Cin,HW] + b, one GEMM per
 * image on all threads. */
static void conv1x1(float *out, const float *in, const float *w, const float *b, int N, int Cin,
                    size_t HW, int Cout) {
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * Cout * HW;
        fill_bias(o, HW, b, Cout, HW);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)HW, Cin, 1.0f, w, Cin,
                    in + (size_t)n * Cin * HW, (int)HW, 1.0f, o, (int)HW);
    }
}

/* Small images (the UNet's 16x16 and 8x8 levels): too few pixels to give every thread a wide
 * tile, so one image at a time is im2col'd by all threads (split over channels) and the GEMM
 * runs on all threads (OpenBLAS splits Cout and pixels). */
static void conv_shared_tile(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
                             int N, int Cin, int H, int W, int Cout, int kh, int kw, int stride,
                             int pad_t, int pad_l, int Ho, int Wo) {
    size_t HWo = (size_t)Ho * Wo, HWi = (size_t)H * W, cols = HWo;
    int K = Cin * kh * kw;
    if (cols * K > CONV_TILE_FLOATS) cols = CONV_TILE_FLOATS / (size_t)K > 0 ? CONV_TILE_FLOATS / (size_t)K : 1;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *col = sdc_arena_f32(a, (size_t)K * cols);
    if (!col) {
        conv_direct(out, in, w, b, N, Cin, H, W, Cout, kh, kw, stride, pad_t, pad_l, Ho, Wo);
        return;
    }
    int nchunk = omp_get_max_threads() * 4, cpc = (Cin + nchunk - 1) / nchunk;
    for (int n = 0; n < N; n++)
        for (size_t p0 = 0; p0 < HWo; p0 += cols) {
            int np = (int)(HWo - p0 < cols ? HWo - p0 : cols);
            const float *x = in + (size_t)n * Cin * HWi;
            #pragma omp parallel for schedule(static)
            for (int c0 = 0; c0 < Cin; c0 += cpc)
                im2col_tile(col + (size_t)c0 * kh * kw * np, x + (size_t)c0 * HWi, Cin - c0 < cpc ? Cin - c0 : cpc,
                            H, W, kh, kw, stride, pad_t, pad_l, Wo, (long)p0, np);
            float *o = out + (size_t)n * Cout * HWo + p0;
            fill_bias(o, HWo, b, Cout, (size_t)np);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, np, K, 1.0f, w, K, col, np, 1.0f, o, (int)HWo);
        }
    sdc_arena_reset(a, m);
}

void k_conv2d(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
              int N, int Cin, int H, int W, int Cout, int kh, int kw, int stride,
              int pad_t, int pad_l, int pad_b, int pad_r) {
    int Ho = (H + pad_t + pad_b - kh) / stride + 1, Wo = (W + pad_l + pad_r - kw) / stride + 1;
    size_t HWo = (size_t)Ho * Wo, HWi = (size_t)H * W;
    int K = Cin * kh * kw;
    kint_init();
    if (kh == 1 && kw == 1 && stride == 1 && !pad_t && !pad_l && !pad_b && !pad_r) {
        conv1x1(out, in, w, b, N, Cin, HWo, Cout);
        return;
    }
    if ((size_t)N * HWo < (size_t)CONV_SMALL_COLS * omp_get_max_threads()) {
        conv_shared_tile(a, out, in, w, b, N, Cin, H, W, Cout, kh, kw, stride, pad_t, pad_l, Ho, Wo);
        return;
    }
    /* Tiles: each image's Ho·Wo pixels cut into ntile pieces of <= cols pixels. */
    size_t cols = CONV_TILE_COLS, maxc = CONV_TILE_FLOATS / (size_t)K;
    if (cols > maxc) cols = maxc > 0 ? maxc : 1;
    int nthr = omp_get_max_threads();
    /* Too few tiles to keep every thread busy: make them narrower (down to 128 pixels). */
    while (cols > 128 && (size_t)N * ((HWo + cols - 1) / cols) < (size_t)2 * nthr) cols /= 2;
    if (cols > HWo) cols = HWo;
    long per_img = (long)((HWo + cols - 1) / cols), ntiles = per_img * N;
    if (nthr > ntiles) nthr = (int)ntiles;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *col = sdc_arena_f32(a, (size_t)nthr * K * cols);
    if (!col) { nthr = 1; col = sdc_arena_f32(a, (size_t)K * cols); }
    if (!col) {   /* no scratch at all: the direct loop (slow, but the result is right) */
        conv_direct(out, in, w, b, N, Cin, H, W, Cout, kh, kw, stride, pad_t, pad_l, Ho, Wo);
        return;
    }
    #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (long t = 0; t < ntiles; t++) {
        int n = (int)(t / per_img);
        long p0 = (t % per_img) * (long)cols;
        int np = (int)(HWo - p0 < cols ? HWo - p0 : cols);
        float *c = col + (size_t)omp_get_thread_num() * K * cols;
        float *o = out + (size_t)n * Cout * HWo + p0;
        im2col_tile(c, in + (size_t)n * Cin * HWi, Cin, H, W, kh, kw, stride, pad_t, pad_l, Wo, p0, np);
        fill_bias(o, HWo, b, Cout, (size_t)np);
        /* out[Cout, np] += w[Cout, K] · col[K, np] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, np, K, 1.0f, w, K, c, np, 1.0f, o, (int)HWo);
    }
    sdc_arena_reset(a, m);
}

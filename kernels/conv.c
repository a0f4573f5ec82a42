/* conv.c — k_conv2d. Paths, first that applies:
 *  - 1x1, stride 1, no padding: one GEMM per image on all threads;
 *  - AVX-512, stride 1, output rows > 16 wide: direct convolution (no im2col, no GEMM packing;
 *    see conv_direct_fast) — the UNet's 64x64 and 32x32 levels and the whole VAE decoder;
 *  - small images: one shared im2col tile per image (split over channels), GEMM on all threads;
 *  - otherwise: im2col over tiles of output pixels (never the whole layer), tiles on OpenMP
 *    threads, each with its own scratch and a one-thread sgemm (OpenBLAS runs single-threaded
 *    inside a parallel region), so im2col and GEMM both use every core.
 * Without scratch from the arena: the plain direct loop. */
#include "kernels/isa.h"   /* first: compiled once per vector width (kernels/isa.h) */

#include <cblas.h>
#include <omp.h>
#include <string.h>


/* A tile is at most this many output pixels of one image (GEMM N): wide enough for sgemm to run
 * near its peak, narrow enough that its im2col block (K x N floats; K = Cin·kh·kw up to 11520)
 * stays in L2/L3: at 1280 channels 11520 x 256 floats = 11.8 MB. */
#define CONV_TILE_COLS 512
/* ...and at most this many floats of im2col scratch per thread (32 MiB), whatever K is. */
#define CONV_TILE_FLOATS ((size_t)8 << 20)
/* Below this many output pixels per thread (all images), tiles would be too narrow for a fast
 * GEMM: the shared-tile path splits the work over output channels instead. */
#define CONV_SMALL_COLS 512

/* col[K = Cin·kh·kw, np] (row stride ldc) = patches of in[Cin,H,W] for output pixels
 * p0 .. p0+np-1 (row-major over Ho x Wo). Zero outside the padded image. */
static void im2col_tile(float *col, size_t ldc, const float *in, int Cin, int H, int W, int kh, int kw,
                        int stride, int pad_t, int pad_l, int Wo, long p0, int np) {
    for (int c = 0; c < Cin; c++)
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                float *dst = col + ((size_t)(c * kh + ky) * kw + kx) * ldc;
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

#if defined(__AVX512F__)
/* ---- AVX-512 direct path for stride-1 convs on rows > 16 wide: no im2col, no GEMM packing ----
 * Output channels in blocks of DC_RO (weights packed [block][Cin][kh][kw][DC_RO], zero-padded),
 * pixels 32 at a time along an output row; the input rows a band of output rows needs are copied
 * once per thread into a zero-padded band, so the inner loop has no border tests. */
#include <immintrin.h>

#define DC_RO 12
/* Input channels summed per pass over a block of outputs (partial sums are added into out):
 * keeps the weight slice in L1/L2 and each float accumulation chain short (<= 128·kh·kw terms). */
#define DC_CB 128
/* Padded input band per thread, in floats (1 MiB: stays in L2 next to a weight block). */
#define DC_BAND_FLOATS ((size_t)256 << 10)

/* acc[RO=12 output channels][2 x 16 pixels] over all Cin·kh·kw taps. The first 16 pixels read
 * band[c·rs + ky·Wp + kx + i] (the zero-padded input) and are stored at out[r·ldo + i]; the second
 * 16 are the same at input offset in2 and output offset out2 (16 and 16: the next 16 pixels of
 * the row; the offsets are parameters so that a caller could pair rows instead — measured slower
 * than im2col + sgemm for 16-wide rows, so rows of <= 16 take that path).
 * wp[(c·kh + ky)·kw + kx][RO]: the packed weights of this channel block. Stores channels < nout
 * and the first nx0 / nx1 pixels of each half (masked). accumulate: add this block's sum (from 0,
 * no bias) to what out holds from the previous blocks of input channels: a two-level sum. */
static void conv_ukernel(float *out, size_t ldo, const float *band, size_t rs, int Wp, const float *wp,
                         const float *bias, int Cin, int kh, int kw, int nout, size_t in2, size_t out2,
                         int nx0, int nx1, int accumulate) {
    __mmask16 m0 = nx0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nx0) - 1);
    __mmask16 m1 = nx1 >= 16 ? (__mmask16)0xffff : nx1 <= 0 ? (__mmask16)0 : (__mmask16)((1u << nx1) - 1);
    __m512 a0_0 = _mm512_set1_ps(bias[0]), a0_1 = a0_0;
    __m512 a1_0 = _mm512_set1_ps(bias[1]), a1_1 = a1_0;
    __m512 a2_0 = _mm512_set1_ps(bias[2]), a2_1 = a2_0;
    __m512 a3_0 = _mm512_set1_ps(bias[3]), a3_1 = a3_0;
    __m512 a4_0 = _mm512_set1_ps(bias[4]), a4_1 = a4_0;
    __m512 a5_0 = _mm512_set1_ps(bias[5]), a5_1 = a5_0;
    __m512 a6_0 = _mm512_set1_ps(bias[6]), a6_1 = a6_0;
    __m512 a7_0 = _mm512_set1_ps(bias[7]), a7_1 = a7_0;
    __m512 a8_0 = _mm512_set1_ps(bias[8]), a8_1 = a8_0;
    __m512 a9_0 = _mm512_set1_ps(bias[9]), a9_1 = a9_0;
    __m512 a10_0 = _mm512_set1_ps(bias[10]), a10_1 = a10_0;
    __m512 a11_0 = _mm512_set1_ps(bias[11]), a11_1 = a11_0;
    if (accumulate) {   /* this block's sum starts at 0 and is added to out at the end */
        a0_0 = a0_1 = _mm512_setzero_ps();
        a1_0 = a1_1 = _mm512_setzero_ps();
        a2_0 = a2_1 = _mm512_setzero_ps();
        a3_0 = a3_1 = _mm512_setzero_ps();
        a4_0 = a4_1 = _mm512_setzero_ps();
        a5_0 = a5_1 = _mm512_setzero_ps();
        a6_0 = a6_1 = _mm512_setzero_ps();
        a7_0 = a7_1 = _mm512_setzero_ps();
        a8_0 = a8_1 = _mm512_setzero_ps();
        a9_0 = a9_1 = _mm512_setzero_ps();
        a10_0 = a10_1 = _mm512_setzero_ps();
        a11_0 = a11_1 = _mm512_setzero_ps();
    }
    for (int c = 0; c < Cin; c++)
        for (int ky = 0; ky < kh; ky++) {
            const float *row = band + (size_t)c * rs + (size_t)ky * Wp;
            const float *w = wp + (size_t)(c * kh + ky) * kw * 12;
            for (int kx = 0; kx < kw; kx++, w += 12) {
                __m512 x0 = _mm512_loadu_ps(row + kx), x1 = _mm512_loadu_ps(row + kx + in2), b;
                b = _mm512_set1_ps(w[0]); a0_0 = _mm512_fmadd_ps(b, x0, a0_0); a0_1 = _mm512_fmadd_ps(b, x1, a0_1);
                b = _mm512_set1_ps(w[1]); a1_0 = _mm512_fmadd_ps(b, x0, a1_0); a1_1 = _mm512_fmadd_ps(b, x1, a1_1);
                b = _mm512_set1_ps(w[2]); a2_0 = _mm512_fmadd_ps(b, x0, a2_0); a2_1 = _mm512_fmadd_ps(b, x1, a2_1);
                b = _mm512_set1_ps(w[3]); a3_0 = _mm512_fmadd_ps(b, x0, a3_0); a3_1 = _mm512_fmadd_ps(b, x1, a3_1);
                b = _mm512_set1_ps(w[4]); a4_0 = _mm512_fmadd_ps(b, x0, a4_0); a4_1 = _mm512_fmadd_ps(b, x1, a4_1);
                b = _mm512_set1_ps(w[5]); a5_0 = _mm512_fmadd_ps(b, x0, a5_0); a5_1 = _mm512_fmadd_ps(b, x1, a5_1);
                b = _mm512_set1_ps(w[6]); a6_0 = _mm512_fmadd_ps(b, x0, a6_0); a6_1 = _mm512_fmadd_ps(b, x1, a6_1);
                b = _mm512_set1_ps(w[7]); a7_0 = _mm512_fmadd_ps(b, x0, a7_0); a7_1 = _mm512_fmadd_ps(b, x1, a7_1);
                b = _mm512_set1_ps(w[8]); a8_0 = _mm512_fmadd_ps(b, x0, a8_0); a8_1 = _mm512_fmadd_ps(b, x1, a8_1);
                b = _mm512_set1_ps(w[9]); a9_0 = _mm512_fmadd_ps(b, x0, a9_0); a9_1 = _mm512_fmadd_ps(b, x1, a9_1);
                b = _mm512_set1_ps(w[10]); a10_0 = _mm512_fmadd_ps(b, x0, a10_0); a10_1 = _mm512_fmadd_ps(b, x1, a10_1);
                b = _mm512_set1_ps(w[11]); a11_0 = _mm512_fmadd_ps(b, x0, a11_0); a11_1 = _mm512_fmadd_ps(b, x1, a11_1);
            }
        }
    if (nout > 0) { if (accumulate) { a0_0 = _mm512_add_ps(a0_0, _mm512_maskz_loadu_ps(m0, out + 0 * ldo)); a0_1 = _mm512_add_ps(a0_1, _mm512_maskz_loadu_ps(m1, out + 0 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 0 * ldo, m0, a0_0); _mm512_mask_storeu_ps(out + 0 * ldo + out2, m1, a0_1); }
    if (nout > 1) { if (accumulate) { a1_0 = _mm512_add_ps(a1_0, _mm512_maskz_loadu_ps(m0, out + 1 * ldo)); a1_1 = _mm512_add_ps(a1_1, _mm512_maskz_loadu_ps(m1, out + 1 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 1 * ldo, m0, a1_0); _mm512_mask_storeu_ps(out + 1 * ldo + out2, m1, a1_1); }
    if (nout > 2) { if (accumulate) { a2_0 = _mm512_add_ps(a2_0, _mm512_maskz_loadu_ps(m0, out + 2 * ldo)); a2_1 = _mm512_add_ps(a2_1, _mm512_maskz_loadu_ps(m1, out + 2 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 2 * ldo, m0, a2_0); _mm512_mask_storeu_ps(out + 2 * ldo + out2, m1, a2_1); }
    if (nout > 3) { if (accumulate) { a3_0 = _mm512_add_ps(a3_0, _mm512_maskz_loadu_ps(m0, out + 3 * ldo)); a3_1 = _mm512_add_ps(a3_1, _mm512_maskz_loadu_ps(m1, out + 3 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 3 * ldo, m0, a3_0); _mm512_mask_storeu_ps(out + 3 * ldo + out2, m1, a3_1); }
    if (nout > 4) { if (accumulate) { a4_0 = _mm512_add_ps(a4_0, _mm512_maskz_loadu_ps(m0, out + 4 * ldo)); a4_1 = _mm512_add_ps(a4_1, _mm512_maskz_loadu_ps(m1, out + 4 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 4 * ldo, m0, a4_0); _mm512_mask_storeu_ps(out + 4 * ldo + out2, m1, a4_1); }
    if (nout > 5) { if (accumulate) { a5_0 = _mm512_add_ps(a5_0, _mm512_maskz_loadu_ps(m0, out + 5 * ldo)); a5_1 = _mm512_add_ps(a5_1, _mm512_maskz_loadu_ps(m1, out + 5 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 5 * ldo, m0, a5_0); _mm512_mask_storeu_ps(out + 5 * ldo + out2, m1, a5_1); }
    if (nout > 6) { if (accumulate) { a6_0 = _mm512_add_ps(a6_0, _mm512_maskz_loadu_ps(m0, out + 6 * ldo)); a6_1 = _mm512_add_ps(a6_1, _mm512_maskz_loadu_ps(m1, out + 6 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 6 * ldo, m0, a6_0); _mm512_mask_storeu_ps(out + 6 * ldo + out2, m1, a6_1); }
    if (nout > 7) { if (accumulate) { a7_0 = _mm512_add_ps(a7_0, _mm512_maskz_loadu_ps(m0, out + 7 * ldo)); a7_1 = _mm512_add_ps(a7_1, _mm512_maskz_loadu_ps(m1, out + 7 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 7 * ldo, m0, a7_0); _mm512_mask_storeu_ps(out + 7 * ldo + out2, m1, a7_1); }
    if (nout > 8) { if (accumulate) { a8_0 = _mm512_add_ps(a8_0, _mm512_maskz_loadu_ps(m0, out + 8 * ldo)); a8_1 = _mm512_add_ps(a8_1, _mm512_maskz_loadu_ps(m1, out + 8 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 8 * ldo, m0, a8_0); _mm512_mask_storeu_ps(out + 8 * ldo + out2, m1, a8_1); }
    if (nout > 9) { if (accumulate) { a9_0 = _mm512_add_ps(a9_0, _mm512_maskz_loadu_ps(m0, out + 9 * ldo)); a9_1 = _mm512_add_ps(a9_1, _mm512_maskz_loadu_ps(m1, out + 9 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 9 * ldo, m0, a9_0); _mm512_mask_storeu_ps(out + 9 * ldo + out2, m1, a9_1); }
    if (nout > 10) { if (accumulate) { a10_0 = _mm512_add_ps(a10_0, _mm512_maskz_loadu_ps(m0, out + 10 * ldo)); a10_1 = _mm512_add_ps(a10_1, _mm512_maskz_loadu_ps(m1, out + 10 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 10 * ldo, m0, a10_0); _mm512_mask_storeu_ps(out + 10 * ldo + out2, m1, a10_1); }
    if (nout > 11) { if (accumulate) { a11_0 = _mm512_add_ps(a11_0, _mm512_maskz_loadu_ps(m0, out + 11 * ldo)); a11_1 = _mm512_add_ps(a11_1, _mm512_maskz_loadu_ps(m1, out + 11 * ldo + out2)); }
                    _mm512_mask_storeu_ps(out + 11 * ldo, m0, a11_0); _mm512_mask_storeu_ps(out + 11 * ldo + out2, m1, a11_1); }
}

/* band[c][r][0..Wp) = in[c][y0 - pad_t + r][x0 - pad_l + x], zero outside the image. */
static void fill_band(float *band, size_t rs, int Wp, const float *in, int Cin, int H, int W, int y0,
                      int rows, int x0, int pad_t, int pad_l) {
    int lo = pad_l - x0, hi = pad_l - x0 + W;   /* band columns holding image columns */
    if (lo < 0) lo = 0;
    if (hi > Wp) hi = Wp;
    for (int c = 0; c < Cin; c++)
        for (int r = 0; r < rows; r++) {
            float *d = band + (size_t)c * rs + (size_t)r * Wp;
            int iy = y0 - pad_t + r;
            if (iy < 0 || iy >= H || hi <= lo) { memset(d, 0, (size_t)Wp * sizeof(float)); continue; }
            memset(d, 0, (size_t)lo * sizeof(float));
            memcpy(d + lo, in + ((size_t)c * H + iy) * W + (x0 - pad_l + lo), (size_t)(hi - lo) * sizeof(float));
            memset(d + hi, 0, (size_t)(Wp - hi) * sizeof(float));
        }
}

/* Returns 0 (nothing written) when the arena cannot give the scratch; the caller falls back.
 * Tasks are tiles of RB output rows x XT output columns of one image, sized so that the padded
 * input band (Cin x (RB+kh-1) x (XT+kw-1)) fits DC_BAND_FLOATS: wide images with many channels
 * (the VAE's 512 x 256x256) would otherwise push the band out of L2. */
static int conv_direct_fast(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
                            int N, int Cin, int H, int W, int Cout, int kh, int kw, int pad_t, int pad_l,
                            int Ho, int Wo) {
    int nob = (Cout + DC_RO - 1) / DC_RO, taps = kh * kw, Wo32 = (Wo + 31) / 32 * 32;
    long xt = ((long)(DC_BAND_FLOATS / ((size_t)Cin * (kh - 1 + 4))) - (kw - 1)) / 32 * 32;   /* >= 4 rows */
    int XT = xt < 32 ? 32 : xt > Wo32 ? Wo32 : (int)xt, Wp = XT + kw - 1;
    size_t rowf = (size_t)Cin * Wp, HWo = (size_t)Ho * Wo;
    long rb = (long)(DC_BAND_FLOATS / rowf) - (kh - 1);
    int RB = rb < 1 ? 1 : rb > Ho ? Ho : (int)rb, nthr = omp_get_max_threads(), nxt = (Wo + XT - 1) / XT;
    while (RB > 1 && (long)N * nxt * ((Ho + RB - 1) / RB) < 2L * nthr) RB = (RB + 1) / 2;
    int nband = (Ho + RB - 1) / RB;
    long ntasks = (long)N * nband * nxt;
    if (nthr > ntasks) nthr = (int)ntasks;
    size_t rs = (size_t)(RB + kh - 1) * Wp, wblk = (size_t)Cin * taps * DC_RO;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *wpk = sdc_arena_f32(a, (size_t)nob * wblk), *bpad = sdc_arena_f32(a, (size_t)nob * DC_RO);
    float *bands = sdc_arena_f32(a, (size_t)nthr * Cin * rs);
    if (!wpk || !bpad || !bands) { sdc_arena_reset(a, m); return 0; }
    for (int o = 0; o < nob * DC_RO; o++) bpad[o] = b && o < Cout ? b[o] : 0.0f;
    #pragma omp parallel for num_threads(nthr) schedule(static)
    for (int ob = 0; ob < nob; ob++)   /* wpk[ob][c][t][r] = w[ob·RO + r][c][t] */
        for (int c = 0; c < Cin; c++)
            for (int t = 0; t < taps; t++)
                for (int r = 0; r < DC_RO; r++) {
                    int o = ob * DC_RO + r;
                    wpk[(size_t)ob * wblk + ((size_t)c * taps + t) * DC_RO + r] =
                        o < Cout ? w[((size_t)o * Cin + c) * taps + t] : 0.0f;
                }
    #pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (long t = 0; t < ntasks; t++) {
        int n = (int)(t / ((long)nband * nxt)), yb = (int)(t / nxt % nband), x0 = (int)(t % nxt) * XT;
        int y0 = yb * RB, y1 = y0 + RB < Ho ? y0 + RB : Ho, x1 = x0 + XT < Wo ? x0 + XT : Wo;
        float *band = bands + (size_t)omp_get_thread_num() * Cin * rs;
        fill_band(band, rs, Wp, in + (size_t)n * Cin * H * W, Cin, H, W, y0, y1 - y0 + kh - 1, x0, pad_t, pad_l);
        for (int ob = 0; ob < nob; ob++) {
            int nout = Cout - ob * DC_RO < DC_RO ? Cout - ob * DC_RO : DC_RO;
            float *ob_out = out + ((size_t)n * Cout + (size_t)ob * DC_RO) * HWo;
            const float *wb = wpk + (size_t)ob * wblk, *bb = bpad + (size_t)ob * DC_RO;
            for (int c0 = 0; c0 < Cin; c0 += DC_CB) {   /* input channels in blocks: shorter sums */
                int nc = Cin - c0 < DC_CB ? Cin - c0 : DC_CB;
                const float *bc = band + (size_t)c0 * rs, *wc = wb + (size_t)c0 * taps * DC_RO;
                for (int y = y0; y < y1; y++)
                    for (int xs = x0; xs < x1; xs += 32)
                        conv_ukernel(ob_out + (size_t)y * Wo + xs, HWo, bc + (size_t)(y - y0) * Wp + (xs - x0), rs, Wp,
                                     wc, bb, nc, kh, kw, nout, 16, 16, x1 - xs < 16 ? x1 - xs : 16, x1 - xs - 16, c0 > 0);
            }
        }
    }
    sdc_arena_reset(a, m);
    return 1;
}
#endif

/* Small images (the UNet's 16x16 and 8x8 levels): too few pixels to give every thread a wide
 * tile, so one image at a time is im2col'd by all threads (split over channels) and the GEMM
 * runs on all threads (OpenBLAS splits Cout and pixels). */
/* All N images in one tile: col[K, N·HWo] (image n at column n·HWo), one GEMM into tmp[Cout, N·HWo]
 * (a wider GEMM than one image's: the 8x8 level has 64 pixels per image), then tmp + b scattered
 * to out[n][Cout][HWo]. Returns 0 (nothing written) without scratch. */
static int conv_shared_batched(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
                               int N, int Cin, int H, int W, int Cout, int kh, int kw, int stride,
                               int pad_t, int pad_l, int Ho, int Wo) {
    size_t HWo = (size_t)Ho * Wo, HWi = (size_t)H * W, NC = (size_t)N * HWo;
    int K = Cin * kh * kw, nchunk = omp_get_max_threads() * 4, cpc = (Cin + nchunk - 1) / nchunk;
    int per_img = (Cin + cpc - 1) / cpc;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *col = sdc_arena_f32(a, (size_t)K * NC), *tmp = sdc_arena_f32(a, (size_t)Cout * NC);
    if (!col || !tmp) { sdc_arena_reset(a, m); return 0; }
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N * per_img; t++) {
        int n = t / per_img, c0 = (t % per_img) * cpc;
        im2col_tile(col + (size_t)c0 * kh * kw * NC + (size_t)n * HWo, NC, in + ((size_t)n * Cin + c0) * HWi,
                    Cin - c0 < cpc ? Cin - c0 : cpc, H, W, kh, kw, stride, pad_t, pad_l, Wo, 0, (int)HWo);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)NC, K, 1.0f, w, K, col, (int)NC, 0.0f, tmp, (int)NC);
    #pragma omp parallel for schedule(static)
    for (long t = 0; t < (long)N * Cout; t++) {
        int n = (int)(t / Cout), o = (int)(t % Cout);
        const float *src = tmp + (size_t)o * NC + (size_t)n * HWo;
        float *dst = out + (size_t)t * HWo, bo = b ? b[o] : 0.0f;
        for (size_t i = 0; i < HWo; i++) dst[i] = src[i] + bo;
    }
    sdc_arena_reset(a, m);
    return 1;
}

static void conv_shared_tile(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
                             int N, int Cin, int H, int W, int Cout, int kh, int kw, int stride,
                             int pad_t, int pad_l, int Ho, int Wo) {
    size_t HWo = (size_t)Ho * Wo, HWi = (size_t)H * W, cols = HWo;
    int K = Cin * kh * kw;
    if (N > 1 && (size_t)K * N * HWo <= CONV_TILE_FLOATS &&
        conv_shared_batched(a, out, in, w, b, N, Cin, H, W, Cout, kh, kw, stride, pad_t, pad_l, Ho, Wo))
        return;
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
                im2col_tile(col + (size_t)c0 * kh * kw * np, (size_t)np, x + (size_t)c0 * HWi,
                            Cin - c0 < cpc ? Cin - c0 : cpc, H, W, kh, kw, stride, pad_t, pad_l, Wo, (long)p0, np);
            float *o = out + (size_t)n * Cout * HWo + p0;
            fill_bias(o, HWo, b, Cout, (size_t)np);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, np, K, 1.0f, w, K, col, np, 1.0f, o, (int)HWo);
        }
    sdc_arena_reset(a, m);
}

void KISA_NAME(k_conv2d)(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
                         int N, int Cin, int H, int W, int Cout, int kh, int kw, int stride,
                         int pad_t, int pad_l, int pad_b, int pad_r) {
    KISA_VOID(k_conv2d, a, out, in, w, b, N, Cin, H, W, Cout, kh, kw, stride, pad_t, pad_l, pad_b, pad_r);
    if (N <= 0 || Cin <= 0 || Cout <= 0 || kh <= 0 || kw <= 0 || stride <= 0 || H + pad_t + pad_b < kh ||
        W + pad_l + pad_r < kw)
        return;   /* no output pixel: nothing to compute (the graphs check shapes before calling) */
    int Ho = (H + pad_t + pad_b - kh) / stride + 1, Wo = (W + pad_l + pad_r - kw) / stride + 1;
    size_t HWo = (size_t)Ho * Wo, HWi = (size_t)H * W;
    int K = Cin * kh * kw;
    kint_init();
    if (kh == 1 && kw == 1 && stride == 1 && !pad_t && !pad_l && !pad_b && !pad_r) {
        conv1x1(out, in, w, b, N, Cin, HWo, Cout);
        return;
    }
#if defined(__AVX512F__)
    if (stride == 1 && Wo > 16 &&
        conv_direct_fast(a, out, in, w, b, N, Cin, H, W, Cout, kh, kw, pad_t, pad_l, Ho, Wo))
        return;
#endif
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
        im2col_tile(c, (size_t)np, in + (size_t)n * Cin * HWi, Cin, H, W, kh, kw, stride, pad_t, pad_l, Wo, p0, np);
        fill_bias(o, HWo, b, Cout, (size_t)np);
        /* out[Cout, np] += w[Cout, K] · col[K, np] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, np, K, 1.0f, w, K, c, np, 1.0f, o, (int)HWo);
    }
    sdc_arena_reset(a, m);
}

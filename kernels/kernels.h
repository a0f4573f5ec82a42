/* kernels.h — the compute kernels every graph calls: f32, NCHW, BLAS + OpenMP.
 *
 * Conventions: output first; then inputs; then sizes. All tensors are contiguous f32 in
 * PyTorch's layouts (activations NCHW or [rows, features]; Linear weights [out, in];
 * Conv weights [Cout, Cin, kh, kw]). Kernels never malloc: scratch comes from the arena given
 * first (and is released before return). "in place" means out may equal in.
 * Threads: OpenMP owns them; sdc_kernels_set_threads(n) sets the count for OpenMP and OpenBLAS
 * alike (OpenBLAS's OpenMP build shares the pool). */
#ifndef SDC_KERNELS_H
#define SDC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/arena.h"

void sdc_kernels_set_threads(int n);   /* n <= 0: all cores */
int  sdc_kernels_get_threads(void);
/* The GEMM kernel family OpenBLAS runs (e.g. "SkylakeX"). The first call into the kernels makes
 * OpenBLAS use this CPU's kernels when its own detection fell back to older ones (gemm.c). */
const char *sdc_kernels_blas_core(void);
/* One line for the user when the environment's OPENBLAS_CORETYPE (respected as given) names older
 * GEMM kernels than this CPU runs; NULL otherwise. */
const char *sdc_kernels_blas_note(void);

/* The vector kernels this process runs: "AVX-512" or "AVX2" (a portable build picks AVX-512 at
 * run time where the CPU has it; the environment variable SDC_CPU=avx2 keeps it on the AVX2
 * kernels); "AVX-512 (native)" / "AVX2 (native)" (-DSDC_NATIVE=ON: compiled for the build
 * machine only, SDC_CPU has no effect); "scalar" (no x86 vector unit). */
const char *sdc_kernels_isa(void);

/* A weight handed to a kernel a few rows at a time instead of whole: writes rows r0 .. r0+nr-1
 * of the f32 weight (each row its cols floats, back to back) into dst; returns 0, or nonzero to
 * fail the call. Called from several threads at once (the weight stays as stored, e.g. f16 in
 * the file's pages, and is widened into cache-sized scratch just before its products). */
typedef int (*k_rows_fn)(void *ctx, float *dst, int r0, int nr);

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major (cblas_sgemm). */
void k_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* out[N,Cout,Ho,Wo] = conv2d(in[N,Cin,H,W], w[Cout,Cin,kh,kw]) + b[Cout] (b may be NULL).
 * Ho = (H + pad_t + pad_b - kh)/stride + 1, likewise Wo. Zero padding, may be asymmetric
 * (the VAE encoder's downsample pads (0,1,0,1)). 1x1 convs take the plain GEMM path. */
void k_conv2d(sdc_arena *a, float *out, const float *in, const float *w, const float *b,
              int N, int Cin, int H, int W, int Cout, int kh, int kw, int stride,
              int pad_t, int pad_l, int pad_b, int pad_r);

/* 3x3 stride-1 pad-1 convolution as Winograd F(2x2, 3x3) (kernels/winograd.c): 2.25x fewer
 * multiplies than the direct method, the same result to f32 rounding (max abs error ~1e-6 of the
 * output's scale). U = k_wino_pack(w[Cout,Cin,3,3]) (k_wino_packed_floats(Cout, Cin) floats),
 * made once per weight. out[N,Cout,H,W] = conv(in[N,Cin,H,W]) + b[Cout] (b may be NULL)
 * + res[N,Cout,H,W] (may be NULL; may equal out). out must not overlap in.
 * Returns 1, or 0 (nothing written) when the arena cannot give the scratch. */
size_t k_wino_packed_floats(int Cout, int Cin);
void   k_wino_pack(float *U, const float *w, int Cout, int Cin);
/* The same for output channels ob·12 .. ob·12+11 only (K_WINO_BLOCK rows): wb = their weights
 * [min(12, Cout - ob·12), Cin, 3, 3]; for packing a weight a block at a time (one thread). */
#define K_WINO_BLOCK 12
void   k_wino_pack_block(float *U, const float *wb, int Cout, int Cin, int ob);
int    k_conv3x3_wino(sdc_arena *a, float *out, const float *in, const float *U, const float *b,
                      const float *res, int N, int Cin, int H, int W, int Cout);
/* k_conv3x3_wino with the weight streamed instead of packed once: rows(ctx, dst, r0, nr) writes
 * the f32 weights of output channels r0 .. r0+nr-1 [nr, Cin, 3, 3] into dst (nr <= K_WINO_BLOCK;
 * returns 0, or nonzero to fail the call; called from several threads at once). Each call packs
 * a group of output channels at a time into per-thread scratch that stays in cache and runs that
 * group's products against the input transforms of up to a cache's worth of tiles; the packed
 * transform of the whole weight is never made (no 16/9-size copy in memory: the weight is read
 * as stored, once per call for the UNet's sizes). The same bits as k_conv3x3_wino on
 * k_wino_pack(w). Returns 1, or 0 (nothing usable written) when the arena cannot give the
 * scratch or rows fails. */
int    k_conv3x3_wino_stream(sdc_arena *a, float *out, const float *in, k_rows_fn rows, void *ctx,
                             const float *b, const float *res, int N, int Cin, int H, int W, int Cout);
/* The same for one image's output rows y0 .. y0+R-1 from a band of the source that the caller
 * made (the VAE makes it with GroupNorm, SiLU and upsampling fused in): band[c·band_plane +
 * j·band_ld + x] = source row y0 - 1 + j (j = 0 .. R+1; zero rows above/below the image), columns
 * x = 0 .. W-1. out[o·out_plane + r·W + x] = (or += when add) the conv + b, r < R. */
int    k_conv3x3_wino_band(sdc_arena *a, float *out, size_t out_plane, int add, const float *band,
                           int band_ld, size_t band_plane, const float *U, const float *b, int Cin,
                           int R, int W, int Cout);

/* out[N,C,HW] = GroupNorm(in) * gamma[C] + beta[C], then SiLU when silu != 0. In place ok. */
void k_group_norm(float *out, const float *in, const float *gamma, const float *beta,
                  int N, int C, int HW, int groups, float eps, int silu);

/* The steps of k_group_norm for callers that fuse the apply step into their own loops (the VAE's
 * GroupNorm + SiLU on conv input bands), with k_group_norm's arithmetic (the same bits):
 * k_sum = Σ x[i]; k_sum_sq_centred = Σ (x[i] - mean)² (both over n floats, in double);
 * y[i] = x[i]·sc + sh, then y·σ(y) if silu (n floats; y may equal x). */
double k_sum(const float *x, size_t n);
double k_sum_sq_centred(const float *x, size_t n, float mean);
void   k_affine(float *y, const float *x, size_t n, float sc, float sh, int silu);

/* out[rows,dim] = LayerNorm(in) * gamma + beta over the last dim. In place ok. */
void k_layer_norm(float *out, const float *in, const float *gamma, const float *beta,
                  int rows, int dim, float eps);

/* out[M,N] = in[M,K] · w[N,K]ᵀ + b[N] (b may be NULL) — torch.nn.Linear. out != in. */
void k_linear(float *out, const float *in, const float *w, const float *b, int M, int K, int N);
/* k_linear with the weight streamed: out[M,N] = (out +, when acc) in[M,K] · Wᵀ + b[N] (b may be
 * NULL), W's rows from rows(ctx, ...) a panel of 16-32 rows at a time (kernels/linear_stream.c),
 * widened into per-thread scratch that stays in L2 and multiplied right away by a register-blocked
 * kernel that reads in in place. The weight is never whole in f32 (for an f16 file: half the bytes
 * of a widened copy, read once per call). Each element is one sum over k in order, then added to
 * out + b: the same bits on any thread count and either vector width. Returns 1, or 0 (out partly
 * written) when the arena cannot give the scratch or rows fails. */
int  k_linear_stream(sdc_arena *a, float *out, const float *in, k_rows_fn rows, void *ctx, const float *b,
                     int M, int K, int N, int acc);

void k_silu(float *x, size_t n);        /* x·σ(x), in place */
void k_gelu(float *x, size_t n);        /* exact erf GELU, in place */
void k_quick_gelu(float *x, size_t n);  /* x·σ(1.702x), in place */
void k_relu(float *x, size_t n);        /* max(x, 0), in place */

/* GEGLU (diffusers): in[M,2F] = [h | g] per row; out[M,F] = h * gelu(g). out != in. */
void k_geglu(float *out, const float *in, int M, int F);

/* Row-wise softmax of x[rows,cols], in place. */
void k_softmax(float *x, int rows, int cols);

/* Scaled dot-product attention, heads interleaved in the channel dim as nn.Linear makes them:
 * q[B,Lq,H*D] (row stride ldq floats), k,v[B,Lk,H*D] (row stride ldk, ldv), out[B,Lq,H*D]
 * (contiguous). out = softmax(q·kᵀ/√D [+ causal mask]) · v per batch and head.
 * Tiles over queries: never materialises a whole Lq×Lk score matrix (scratch from a). */
void k_attention(sdc_arena *a, float *out, const float *q, int ldq, const float *k, int ldk,
                 const float *v, int ldv, int B, int Lq, int Lk, int H, int D, int causal);

/* out[N,C,2H,2W] = nearest-neighbour 2x upsample of in[N,C,H,W]. */
void k_upsample2x(float *out, const float *in, int N, int C, int H, int W);
/* out[N,C,Ho,Wo] = nearest-neighbour resize of in[N,C,H,W] to a given size (PyTorch
 * F.interpolate(size=(Ho,Wo), mode="nearest"): source index floor(dst*in/out)). */
void k_upsample_nearest(float *out, const float *in, int N, int C, int H, int W, int Ho, int Wo);

/* out[N,Ca+Cb,HW] = cat([a[N,Ca,HW], b[N,Cb,HW]], dim=1). */
void k_concat_channels(float *out, const float *a, int Ca, const float *b, int Cb, int N, int HW);

/* out[N,C,HW] <-> out[N,HW,C] (for transformer blocks on NCHW maps). */
void k_nchw_to_nhwc(float *out, const float *in, int N, int C, int HW);
void k_nhwc_to_nchw(float *out, const float *in, int N, int C, int HW);

void k_add(float *out, const float *a, const float *b, size_t n);   /* out may alias a or b */
void k_scale(float *x, float s, size_t n);
/* x[N,C,HW] += bias[N,C] broadcast over HW (ResBlock time embedding). */
void k_add_channel_bias(float *x, const float *bias, int N, int C, int HW);

/* Sinusoidal timestep embedding (diffusers get_timestep_embedding):
 * half = dim/2, freq_j = exp(-ln(max_period) * j / (half - freq_shift)), arg = t * freq_j;
 * out[n] = flip_sin_to_cos ? [cos(arg), sin(arg)] : [sin(arg), cos(arg)] (zero pad if dim odd). */
void k_timestep_embedding(float *out, const float *t, int N, int dim, int flip_sin_to_cos,
                          float freq_shift, float max_period);

/* ---- bf16 (opt-in): operands rounded to bf16 (nearest even), products summed in f32 ----
 * Kernels chosen at run time (kernels/bf16.c): AVX512-BF16 (vdpbf16ps) where the CPU has it, else
 * plain C with the same rounding (SDC_BF16=plain in the environment forces it). */
int         k_bf16_hw(void);          /* 1: this CPU has avx512_bf16 */
const char *k_bf16_path_name(void);   /* the path bf16 kernels run: "avx512_bf16 (vdpbf16ps)" / "plain C" */
/* Tests: run "plain" or "avx512_bf16" from now on. Returns 0, or -1 when this CPU lacks it. */
int         k_bf16_select(const char *name);
/* A Linear weight w[N,K] packed as bf16 pairs (k_linear_bf16_words(N, K) words), made once. */
size_t k_linear_bf16_words(int N, int K);
void   k_linear_bf16_pack(uint32_t *Wp, const float *w, int N, int K);
/* out[M,N] = (out +, when acc) bf16(in[M,K]) · bf16(w)ᵀ + b[N] (b may be NULL), f32 sums.
 * Returns 1, or 0 (nothing written) when the arena cannot give the scratch. */
int    k_linear_bf16(sdc_arena *a, float *out, const float *in, const uint32_t *Wp, const float *b, int M,
                     int K, int N, int acc);
/* k_conv3x3_wino with the 16 GEMMs in bf16: Ub = k_wino_bf16_pack(k_wino_pack's U)
 * (k_wino_bf16_words(Cout, Cin) words); the transforms stay f32. */
size_t k_wino_bf16_words(int Cout, int Cin);
void   k_wino_bf16_pack(uint32_t *Ub, const float *U, int Cout, int Cin);
int    k_conv3x3_wino_bf16(sdc_arena *a, float *out, const float *in, const uint32_t *Ub, const float *b,
                           const float *res, int N, int Cin, int H, int W, int Cout);
int    k_conv3x3_wino_band_bf16(sdc_arena *a, float *out, size_t out_plane, int add, const float *band,
                                int band_ld, size_t band_plane, const uint32_t *Ub, const float *b, int Cin,
                                int R, int W, int Cout);

/* Element conversions (F16C / AVX2 where the CPU has them). */
void k_f16_to_f32(float *dst, const void *src, size_t n);    /* src may be unaligned */
void k_bf16_to_f32(float *dst, const void *src, size_t n);   /* src may be unaligned */
void k_f32_to_f16(uint16_t *dst, const float *src, size_t n);   /* round to nearest even */
void k_f32_to_bf16(uint16_t *dst, const float *src, size_t n);  /* round to nearest even */

#endif

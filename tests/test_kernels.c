/* test_kernels.c — every kernel of kernels.h against a plain double-precision reference written
 * here; also that each kernel gives its arena scratch back. Prints the max errors it measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static int failures;
static sdc_arena good_arena, no_memory;   /* no_memory: every allocation fails (fallback paths) */
static sdc_arena *cur = &good_arena;
#define arena (*cur)
static unsigned rng_state = 12345u;

static float frand(void) {   /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rand_buf(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

/* got vs ref: max |got - ref| <= tol * (1 + max|ref|). */
static void check(const char *what, const float *got, const double *ref, size_t n, double tol) {
    double err = 0.0, mag = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (isnan(e)) err = INFINITY;   /* a NaN fails, and no later element undoes it */
        else if (e > err) err = e;
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    }
    int ok = err <= tol * (1.0 + mag);
    printf("%-44s max abs err %.3g (max |ref| %.3g) %s\n", what, err, mag, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}
/* Element-wise relative check: |got - ref| <= tol·|ref| + atol for every element. */
static void check_rel(const char *what, const float *got, const double *ref, size_t n, double tol, double atol) {
    double worst = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]), r = e / (fabs(ref[i]) + atol / tol);
        if (!(e <= tol * fabs(ref[i]) + atol)) bad++;
        if (!(r <= worst)) worst = r;
    }
    printf("%-44s max rel err %.3g %s\n", what, worst, bad ? "FAIL" : "ok");
    if (bad) failures++;
}
static void check_arena(const char *what, size_t before) {
    if (arena.in_use != before) { printf("%s: arena scratch not released\n", what); failures++; }
}

/* ---- conv2d ---------------------------------------------------------------------------- */
static void conv_case(const char *name, int N, int Cin, int H, int W, int Cout, int k, int s,
                      int pt, int pl, int pb, int pr, int bias) {
    int Ho = (H + pt + pb - k) / s + 1, Wo = (W + pl + pr - k) / s + 1;
    float *in = rand_buf((size_t)N * Cin * H * W, 1.0f), *w = rand_buf((size_t)Cout * Cin * k * k, 0.2f);
    float *b = bias ? rand_buf((size_t)Cout, 1.0f) : NULL;
    size_t no = (size_t)N * Cout * Ho * Wo;
    float *out = malloc(no * sizeof(float));
    double *ref = malloc(no * sizeof(double));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Cout; o++)
            for (int y = 0; y < Ho; y++)
                for (int x = 0; x < Wo; x++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < Cin; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = y * s - pt + ky, ix = x * s - pl + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w[((size_t)(o * Cin + c) * k + ky) * k + kx] *
                                       in[((size_t)(n * Cin + c) * H + iy) * W + ix];
                            }
                    ref[((size_t)(n * Cout + o) * Ho + y) * Wo + x] = acc;
                }
    size_t before = arena.in_use;
    k_conv2d(&arena, out, in, w, b, N, Cin, H, W, Cout, k, k, s, pt, pl, pb, pr);
    check_arena(name, before);
    check(name, out, ref, no, 1e-5);
    free(in); free(w); free(b); free(out); free(ref);
}

/* ---- Winograd 3x3 ---------------------------------------------------------------------- */
/* k_conv3x3_wino against the double reference, with and without bias and residual, on odd and
 * even sizes, short chunks, channel tails and the chunk/column splits of wide images. */
static void wino_case(const char *name, int N, int Cin, int H, int W, int Cout, int bias, int resid) {
    float *in = rand_buf((size_t)N * Cin * H * W, 1.0f), *w = rand_buf((size_t)Cout * Cin * 9, 0.2f);
    float *b = bias ? rand_buf((size_t)Cout, 1.0f) : NULL;
    size_t no = (size_t)N * Cout * H * W;
    float *res = resid ? rand_buf(no, 1.0f) : NULL, *out = malloc(no * sizeof(float));
    float *U = malloc(k_wino_packed_floats(Cout, Cin) * sizeof(float));
    double *ref = malloc(no * sizeof(double));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Cout; o++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    size_t at = ((size_t)(n * Cout + o) * H + y) * W + x;
                    double acc = (b ? b[o] : 0.0) + (res ? res[at] : 0.0);
                    for (int c = 0; c < Cin; c++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = y - 1 + ky, ix = x - 1 + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w[((size_t)(o * Cin + c) * 3 + ky) * 3 + kx] *
                                       in[((size_t)(n * Cin + c) * H + iy) * W + ix];
                            }
                    ref[at] = acc;
                }
    k_wino_pack(U, w, Cout, Cin);
    size_t before = arena.in_use;
    int ok = k_conv3x3_wino(&arena, out, in, U, b, res, N, Cin, H, W, Cout);
    check_arena(name, before);
    if (!ok) { printf("%-44s no scratch FAIL\n", name); failures++; }
    else check(name, out, ref, no, 1e-5);
    if (cur == &good_arena) {   /* without scratch: 0, and out untouched */
        cur = &no_memory;
        memset(out, 0x7f, no * sizeof(float));
        ok = !k_conv3x3_wino(&arena, out, in, U, b, res, N, Cin, H, W, Cout) && out[0] == out[no - 1];
        cur = &good_arena;
        if (!ok) { printf("%-44s no-scratch fallback FAIL\n", name); failures++; }
    }
    free(in); free(w); free(b); free(res); free(out); free(U); free(ref);
}

/* k_conv3x3_wino_stream: the weight given row by row (a callback), never packed whole: the same
 * bits as k_conv3x3_wino on k_wino_pack(w), with bias and residual (also a residual in out), over
 * several super-chunks of tiles and groups of output channels; a failing callback or no scratch
 * gives 0. */
/* k_rows_fn of both streamed kernels: rows of w, cols floats each; from call fail_at on, fails. */
typedef struct stream_src { const float *w; int cols, calls, fail_at; } stream_src;

static int stream_rows(void *ctx, float *dst, int r0, int nr) {
    stream_src *s = ctx;
    int k;
    #pragma omp atomic capture
    k = s->calls++;
    if (s->fail_at >= 0 && k >= s->fail_at) return -1;
    memcpy(dst, s->w + (size_t)r0 * s->cols, (size_t)nr * s->cols * sizeof(float));
    return 0;
}

static void wino_stream_case(const char *name, int N, int Cin, int H, int W, int Cout, int bias, int resid) {
    float *in = rand_buf((size_t)N * Cin * H * W, 1.0f), *w = rand_buf((size_t)Cout * Cin * 9, 0.2f);
    float *b = bias ? rand_buf((size_t)Cout, 1.0f) : NULL;
    size_t no = (size_t)N * Cout * H * W;
    float *res = resid ? rand_buf(no, 1.0f) : NULL, *want = malloc(no * sizeof(float)), *got = malloc(no * sizeof(float));
    float *U = malloc(k_wino_packed_floats(Cout, Cin) * sizeof(float));
    k_wino_pack(U, w, Cout, Cin);
    int ok = k_conv3x3_wino(&arena, want, in, U, b, res, N, Cin, H, W, Cout);
    stream_src src = {w, Cin * 9, 0, -1};
    size_t before = arena.in_use;
    ok = ok && k_conv3x3_wino_stream(&arena, got, in, stream_rows, &src, b, res, N, Cin, H, W, Cout);
    check_arena(name, before);
    ok = ok && !memcmp(got, want, no * sizeof(float));
    if (ok && res) {   /* the residual already in out */
        memcpy(got, res, no * sizeof(float));
        ok = k_conv3x3_wino_stream(&arena, got, in, stream_rows, &src, b, got, N, Cin, H, W, Cout) &&
             !memcmp(got, want, no * sizeof(float));
    }
    src.calls = 0;
    src.fail_at = (Cout + K_WINO_BLOCK - 1) / K_WINO_BLOCK / 2;   /* a block's rows cannot be read */
    ok = ok && !k_conv3x3_wino_stream(&arena, got, in, stream_rows, &src, b, res, N, Cin, H, W, Cout);
    cur = &no_memory;
    ok = ok && !k_conv3x3_wino_stream(&arena, got, in, stream_rows, &src, b, res, N, Cin, H, W, Cout);
    cur = &good_arena;
    printf("%-44s %s\n", name, ok ? "ok (the packed path's bits)" : "FAIL");
    if (!ok) failures++;
    free(in); free(w); free(b); free(res); free(want); free(got); free(U);
}

/* k_conv3x3_wino_band: output rows y0 .. y0+R-1 of a Cin x H x W image from a band of its rows
 * (with the halo rows, zero outside the image; row stride wider than W), added into out. */
static void wino_band_case(const char *name, int Cin, int H, int W, int Cout, int y0, int R) {
    const int ld = W + 5, rows = R + 2;
    float *in = rand_buf((size_t)Cin * H * W, 1.0f), *w = rand_buf((size_t)Cout * Cin * 9, 0.2f);
    float *b = rand_buf((size_t)Cout, 1.0f), *out = rand_buf((size_t)Cout * H * W, 1.0f);
    float *band = calloc((size_t)Cin * rows * ld, sizeof(float));
    float *U = malloc(k_wino_packed_floats(Cout, Cin) * sizeof(float));
    double *ref = malloc((size_t)Cout * H * W * sizeof(double));
    for (int c = 0; c < Cin; c++)
        for (int j = 0; j < rows; j++)
            if (y0 - 1 + j >= 0 && y0 - 1 + j < H)
                memcpy(band + ((size_t)c * rows + j) * ld, in + ((size_t)c * H + y0 - 1 + j) * W, (size_t)W * sizeof(float));
    for (int o = 0; o < Cout; o++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                size_t at = ((size_t)o * H + y) * W + x;
                double acc = out[at];
                if (y >= y0 && y < y0 + R) {
                    acc += b[o];
                    for (int c = 0; c < Cin; c++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = y - 1 + ky, ix = x - 1 + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w[((size_t)(o * Cin + c) * 3 + ky) * 3 + kx] * in[((size_t)c * H + iy) * W + ix];
                            }
                }
                ref[at] = acc;
            }
    k_wino_pack(U, w, Cout, Cin);
    size_t before = arena.in_use;
    int ok = k_conv3x3_wino_band(&arena, out + (size_t)y0 * W, (size_t)H * W, 1, band, ld, (size_t)rows * ld, U, b,
                                 Cin, R, W, Cout);
    check_arena(name, before);
    if (!ok) { printf("%-44s no scratch FAIL\n", name); failures++; }
    else check(name, out, ref, (size_t)Cout * H * W, 1e-5);
    free(in); free(w); free(b); free(out); free(band); free(U); free(ref);
}

/* ---- attention ------------------------------------------------------------------------- */
static void att_case(const char *name, int B, int Lq, int Lk, int H, int D, int causal, int packed) {
    int HD = H * D, ldq = packed ? 3 * HD : HD, ldk = packed ? 3 * HD : HD + 5, ldv = packed ? 3 * HD : HD;
    float *q = rand_buf((size_t)B * Lq * ldq, 2.0f), *k = packed ? q + HD : rand_buf((size_t)B * Lk * ldk, 2.0f);
    float *v = packed ? q + 2 * HD : rand_buf((size_t)B * Lk * ldv, 1.0f);
    float *out = malloc((size_t)B * Lq * HD * sizeof(float));
    double *ref = malloc((size_t)B * Lq * HD * sizeof(double)), *p = malloc((size_t)Lk * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Lq; i++) {
                const float *qi = q + ((size_t)b * Lq + i) * ldq + h * D;
                double mx = -INFINITY, sum = 0.0;
                int jn = causal ? (i + 1 < Lk ? i + 1 : Lk) : Lk;
                for (int j = 0; j < jn; j++) {
                    const float *kj = k + ((size_t)b * Lk + j) * ldk + h * D;
                    double s = 0.0;
                    for (int d = 0; d < D; d++) s += (double)qi[d] * kj[d];
                    p[j] = s / sqrt((double)D);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < jn; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                for (int d = 0; d < D; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < jn; j++) acc += p[j] * v[((size_t)b * Lk + j) * ldv + h * D + d];
                    ref[((size_t)b * Lq + i) * HD + h * D + d] = acc / sum;
                }
            }
    size_t before = arena.in_use;
    k_attention(&arena, out, q, ldq, k, ldk, v, ldv, B, Lq, Lk, H, D, causal);
    check_arena(name, before);
    check(name, out, ref, (size_t)B * Lq * HD, 1e-5);
    free(q); if (!packed) { free(k); free(v); }
    free(out); free(ref); free(p);
}

/* ---- norms, linear, softmax ------------------------------------------------------------- */
static void group_norm_case(int silu, int in_place) {
    int N = 2, C = 12, HW = 53, G = 3, cpg = C / G;
    size_t n = (size_t)N * C * HW;
    float *x = rand_buf(n, 3.0f), *g = rand_buf(C, 1.0f), *be = rand_buf(C, 1.0f), *out = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] += 0.7f;   /* a non-zero mean */
    double *ref = malloc(n * sizeof(double));
    for (int b = 0; b < N; b++)
        for (int gr = 0; gr < G; gr++) {
            const float *xs = x + ((size_t)b * C + gr * cpg) * HW;
            double mean = 0.0, var = 0.0, cnt = (double)cpg * HW;
            for (int i = 0; i < cpg * HW; i++) mean += xs[i];
            mean /= cnt;
            for (int i = 0; i < cpg * HW; i++) var += (xs[i] - mean) * (xs[i] - mean);
            var /= cnt;
            for (int c = 0; c < cpg; c++)
                for (int i = 0; i < HW; i++) {
                    int ch = gr * cpg + c;
                    double y = (xs[(size_t)c * HW + i] - mean) / sqrt(var + 1e-5) * g[ch] + be[ch];
                    if (silu) y = y / (1.0 + exp(-y));
                    ref[((size_t)b * C + ch) * HW + i] = y;
                }
        }
    float *dst = in_place ? x : out;
    k_group_norm(dst, x, g, be, N, C, HW, G, 1e-5f, silu);
    char name[64];
    snprintf(name, sizeof name, "group_norm silu=%d in_place=%d", silu, in_place);
    check(name, dst, ref, n, 1e-5);
    free(x); free(g); free(be); free(out); free(ref);
}

static void layer_norm_case(void) {
    int R = 7, D = 96;
    float *x = rand_buf((size_t)R * D, 2.0f), *g = rand_buf(D, 1.0f), *be = rand_buf(D, 1.0f);
    double *ref = malloc((size_t)R * D * sizeof(double));
    for (int r = 0; r < R; r++) {
        double m = 0.0, v = 0.0;
        for (int i = 0; i < D; i++) m += x[r * D + i];
        m /= D;
        for (int i = 0; i < D; i++) v += (x[r * D + i] - m) * (x[r * D + i] - m);
        v /= D;
        for (int i = 0; i < D; i++) ref[r * D + i] = (x[r * D + i] - m) / sqrt(v + 1e-5) * g[i] + be[i];
    }
    k_layer_norm(x, x, g, be, R, D, 1e-5f);
    check("layer_norm (in place)", x, ref, (size_t)R * D, 1e-5);
    free(x); free(g); free(be); free(ref);
}

/* k_linear on many rows (each thread runs its own sgemm on a slice of rows; the slices' seams
 * fall on every 7th row's neighbours) against the double reference on every 7th row. (Bits
 * across thread counts are the BLAS kernel's affair: OpenBLAS's Haswell sgemm gives other bits
 * on 1 and 2 threads, its SkylakeX one the same, with or without sdc's row slices.) */
static void linear_rows_case(void) {
    int M = 4100, K = 96, N = 40;
    float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 0.3f), *b = rand_buf(N, 1.0f);
    float *out = malloc((size_t)M * N * sizeof(float));
    int rows = (M + 6) / 7;
    float *got = malloc((size_t)rows * N * sizeof(float));
    double *ref = malloc((size_t)rows * N * sizeof(double));
    for (int m = 0; m < M; m += 7)
        for (int n = 0; n < N; n++) {
            double acc = b[n];
            for (int k = 0; k < K; k++) acc += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
            ref[(size_t)(m / 7) * N + n] = acc;
            got[(size_t)(m / 7) * N + n] = 0.0f;
        }
    k_linear(out, x, w, b, M, K, N);
    for (int m = 0; m < M; m += 7) memcpy(got + (size_t)(m / 7) * N, out + (size_t)m * N, (size_t)N * sizeof(float));
    check("linear, 4100 rows (row slices per thread)", got, ref, (size_t)rows * N, 1e-5);
    free(x); free(w); free(b); free(out); free(got); free(ref);
}

static void linear_case(int bias) {
    int M = 19, K = 70, N = 33;
    float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 0.3f);
    float *b = bias ? rand_buf(N, 1.0f) : NULL, *out = malloc((size_t)M * N * sizeof(float));
    double *ref = malloc((size_t)M * N * sizeof(double));
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = b ? b[n] : 0.0;
            for (int k = 0; k < K; k++) acc += (double)x[m * K + k] * w[n * K + k];
            ref[m * N + n] = acc;
        }
    k_linear(out, x, w, b, M, K, N);
    check(bias ? "linear (bias)" : "linear (no bias)", out, ref, (size_t)M * N, 1e-5);
    /* k_sgemm with both transposes: C[M,N] = 0.5 · Aᵀ Bᵀ + 2 C, A[K,M], B[N,K] */
    float *A = rand_buf((size_t)K * M, 1.0f), *C = rand_buf((size_t)M * N, 1.0f);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) acc += (double)A[k * M + m] * w[n * K + k];
            ref[m * N + n] = 0.5 * acc + 2.0 * C[m * N + n];
        }
    k_sgemm(1, 1, M, N, K, 0.5f, A, M, w, K, 2.0f, C, N);
    check("sgemm (transA, transB, alpha, beta)", C, ref, (size_t)M * N, 1e-5);
    free(x); free(w); free(b); free(out); free(ref); free(A); free(C);
}

/* k_linear_stream: the weight given a panel of rows at a time by a callback, against the double
 * reference: many panels (the threads share them out) and few (each panel's rows split over the
 * threads too), a short last panel, rows that end in a partial block, long sums, the bias,
 * accumulation into out, no bias; the same bits on one thread; a failing callback and no
 * scratch give 0; the scratch goes back to the arena. */
static void linear_stream_case(const char *name, int M, int K, int N, int bias, int acc) {
    float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 0.3f);
    float *b = bias ? rand_buf(N, 1.0f) : NULL, *out = rand_buf((size_t)M * N, 1.0f);
    double *ref = malloc((size_t)M * N * sizeof(double));
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = (acc ? out[(size_t)m * N + n] : 0.0) + (b ? b[n] : 0.0);
            for (int k = 0; k < K; k++) s += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
            ref[(size_t)m * N + n] = s;
        }
    stream_src src = {w, K, 0, -1};
    float *one = malloc((size_t)M * N * sizeof(float));   /* the same on one thread */
    memcpy(one, out, (size_t)M * N * sizeof(float));
    size_t before = arena.in_use;
    int ok = k_linear_stream(&arena, out, x, stream_rows, &src, b, M, K, N, acc);
    check_arena(name, before);
    if (!ok) { printf("%s: returned 0\n", name); failures++; }
    check(name, out, ref, (size_t)M * N, 1e-5);
    const int threads = sdc_kernels_get_threads();
    sdc_kernels_set_threads(1);
    ok = k_linear_stream(&arena, one, x, stream_rows, &src, b, M, K, N, acc);
    sdc_kernels_set_threads(threads);
    if (!ok || memcmp(one, out, (size_t)M * N * sizeof(float))) {
        printf("%s: not the same bits on 1 thread\n", name);
        failures++;
    }
    free(one);
    src.calls = 0;
    src.fail_at = 1;   /* the second panel's rows cannot be read */
    int bad = k_linear_stream(&arena, out, x, stream_rows, &src, b, M, K, N, acc);
    cur = &no_memory;
    bad |= k_linear_stream(&arena, out, x, stream_rows, &src, b, M, K, N, acc);
    cur = &good_arena;
    check_arena(name, before);
    if (bad) { printf("%s: a failing callback or no scratch did not return 0\n", name); failures++; }
    free(x); free(w); free(b); free(out); free(ref);
}

static void softmax_case(void) {
    int R = 5, Cn = 301;
    float *x = rand_buf((size_t)R * Cn, 30.0f);
    double *ref = malloc((size_t)R * Cn * sizeof(double));
    for (int r = 0; r < R; r++) {
        double mx = -INFINITY, s = 0.0;
        for (int i = 0; i < Cn; i++) mx = fmax(mx, x[r * Cn + i]);
        for (int i = 0; i < Cn; i++) s += exp(x[r * Cn + i] - mx);
        for (int i = 0; i < Cn; i++) ref[r * Cn + i] = exp(x[r * Cn + i] - mx) / s;
    }
    k_softmax(x, R, Cn);
    check("softmax", x, ref, (size_t)R * Cn, 1e-5);
    free(x); free(ref);
}

/* ---- activations ----------------------------------------------------------------------- */
static double ref_act(int which, double x) {
    switch (which) {
    case 0: return x / (1.0 + exp(-x));
    case 1: return 0.5 * x * erfc(-x / sqrt(2.0));   /* = 0.5·x·(1 + erf(x/√2)), exact in the tail */
    default: return x / (1.0 + exp(-1.702 * x));
    }
}

static void activation_cases(void) {
    static const char *names[] = {"silu", "gelu (erf)", "quick_gelu"};
    size_t n = 100003;   /* not a multiple of any vector width */
    float *x = malloc(n * sizeof(float));
    double *ref = malloc(n * sizeof(double));
    for (int which = 0; which < 3; which++) {
        for (size_t i = 0; i < n; i++) x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
        x[0] = -90.0f; x[1] = 90.0f; x[2] = 0.0f; x[3] = -1e-30f; x[4] = 1e-7f;
        for (size_t i = 0; i < n; i++) ref[i] = ref_act(which, x[i]);
        if (which == 0) k_silu(x, n); else if (which == 1) k_gelu(x, n); else k_quick_gelu(x, n);
        check_rel(names[which], x, ref, n, 1e-5, 1e-30);
    }
    /* GEGLU: out[m,f] = h · gelu(g) */
    int M = 13, F = 77;
    float *in = rand_buf((size_t)M * 2 * F, 4.0f), *out = malloc((size_t)M * F * sizeof(float));
    for (int m = 0; m < M; m++)
        for (int f = 0; f < F; f++) ref[m * F + f] = in[m * 2 * F + f] * ref_act(1, in[m * 2 * F + F + f]);
    k_geglu(out, in, M, F);
    check_rel("geglu", out, ref, (size_t)M * F, 1e-5, 1e-30);
    free(x); free(ref); free(in); free(out);
}

/* ---- layout and element-wise ------------------------------------------------------------- */
static void layout_cases(void) {
    int N = 2, C = 5, H = 3, W = 7, HW = H * W, Cb = 3;
    size_t n = (size_t)N * C * HW;
    float *x = rand_buf(n, 1.0f), *y = rand_buf((size_t)N * Cb * HW, 1.0f);
    float *out = malloc(4 * n * sizeof(float)), *back = malloc(n * sizeof(float));
    double *ref = malloc(4 * n * sizeof(double));
    k_upsample2x(out, x, N, C, H, W);
    for (int p = 0; p < N * C; p++)
        for (int yy = 0; yy < 2 * H; yy++)
            for (int xx = 0; xx < 2 * W; xx++)
                ref[((size_t)p * 2 * H + yy) * 2 * W + xx] = x[((size_t)p * H + yy / 2) * W + xx / 2];
    check("upsample2x", out, ref, 4 * n, 0.0);
    k_concat_channels(out, x, C, y, Cb, N, HW);
    for (int b = 0; b < N; b++)
        for (int c = 0; c < C + Cb; c++)
            for (int i = 0; i < HW; i++)
                ref[((size_t)b * (C + Cb) + c) * HW + i] =
                    c < C ? x[((size_t)b * C + c) * HW + i] : y[((size_t)b * Cb + c - C) * HW + i];
    check("concat_channels", out, ref, (size_t)N * (C + Cb) * HW, 0.0);
    k_nchw_to_nhwc(out, x, N, C, HW);
    for (int b = 0; b < N; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) ref[((size_t)b * HW + i) * C + c] = x[((size_t)b * C + c) * HW + i];
    check("nchw_to_nhwc", out, ref, n, 0.0);
    k_nhwc_to_nchw(back, out, N, C, HW);
    for (size_t i = 0; i < n; i++) ref[i] = x[i];
    check("nhwc_to_nchw (round trip)", back, ref, n, 0.0);
    float *bias = rand_buf((size_t)N * C, 1.0f);
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] + bias[i / HW];
    memcpy(back, x, n * sizeof(float));
    k_add_channel_bias(back, bias, N, C, HW);
    check("add_channel_bias", back, ref, n, 1e-7);
    for (size_t i = 0; i < n; i++) ref[i] = (double)back[i] + x[i];
    k_add(back, back, x, n);
    check("add (aliased)", back, ref, n, 1e-7);
    for (size_t i = 0; i < n; i++) ref[i] = back[i] * 0.37;
    k_scale(back, 0.37f, n);
    check("scale", back, ref, n, 1e-7);
    free(x); free(y); free(out); free(back); free(ref); free(bias);
}

static void timestep_case(int flip, int dim, float shift) {
    float t[3] = {0.0f, 1.0f, 999.0f};
    int N = 3, half = dim / 2;
    float *out = malloc((size_t)N * dim * sizeof(float));
    double *ref = malloc((size_t)N * dim * sizeof(double));
    k_timestep_embedding(out, t, N, dim, flip, shift, 10000.0f);
    double err = 0.0;
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < half; j++) {
            double arg = t[n] * exp(-log(10000.0) * j / (half - shift));
            ref[n * dim + j] = flip ? cos(arg) : sin(arg);
            ref[n * dim + half + j] = flip ? sin(arg) : cos(arg);
        }
        if (dim % 2) ref[n * dim + dim - 1] = 0.0;
        /* torch computes the argument in f32: allow its rounding, |arg| · a few ulps */
        for (int i = 0; i < dim; i++) {
            double e = fabs(out[n * dim + i] - ref[n * dim + i]) / (1.0 + t[n] * 1e-1);
            if (isnan(e)) err = INFINITY;
            else if (e > err) err = e;
        }
    }
    int ok = err <= 1e-5;
    printf("timestep_embedding flip=%d dim=%d shift=%g       scaled err %.3g %s\n", flip, dim, shift, err,
           ok ? "ok" : "FAIL");
    failures += !ok;
    free(out); free(ref);
}

/* ---- f16 / bf16 ------------------------------------------------------------------------ */
static double half_value(uint16_t h) {   /* the definition of IEEE binary16 */
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 31) return m ? NAN : s * INFINITY;
    return e ? s * ldexp(1024 + m, e - 25) : s * ldexp(m, -24);
}

/* Reference f32 -> f16: nearest of the finite halves by value, ties to even, >= 65520 -> inf. */
static uint16_t ref_to_half(float f) {
    if (isnan(f)) return 0x7e00;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7c00;
    int lo = 0, hi = 0x7bff;   /* positive finite halves ascend with their bits */
    while (lo < hi) { int mid = (lo + hi + 1) / 2; if (half_value((uint16_t)mid) <= a) lo = mid; else hi = mid - 1; }
    if (lo < 0x7bff) {
        double dl = a - half_value((uint16_t)lo), dh = half_value((uint16_t)(lo + 1)) - a;
        if (dh < dl || (dh == dl && (lo & 1))) lo++;
    }
    return sign | (uint16_t)lo;
}

static void convert_cases(void) {
    int bad = 0;
    /* every half -> f32, as one array (vector path) and one at a time (scalar path), at an odd offset */
    unsigned char *raw = malloc(2 * 65536 + 1);
    float *f = malloc(65536 * sizeof(float));
    uint16_t *h = malloc(65536 * sizeof(uint16_t));
    for (int i = 0; i < 65536; i++) { raw[1 + 2 * i] = (unsigned char)(i & 0xff); raw[2 + 2 * i] = (unsigned char)(i >> 8); }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) k_f16_to_f32(f, raw + 1, 65536);
        else for (int i = 0; i < 65536; i++) k_f16_to_f32(f + i, raw + 1 + 2 * i, 1);
        for (int i = 0; i < 65536; i++) {
            double want = half_value((uint16_t)i);
            if (isnan(want) ? !isnan(f[i]) : ((double)f[i] != want || !!signbit(f[i]) != ((i & 0x8000) != 0))) bad++;
        }
        /* and back: every non-nan half round-trips exactly (subnormals, inf, -0 included) */
        if (pass == 0) k_f32_to_f16(h, f, 65536);
        else for (int i = 0; i < 65536; i++) k_f32_to_f16(h + i, f + i, 1);
        for (int i = 0; i < 65536; i++)
            if (isnan(f[i]) ? ((h[i] & 0x7c00) != 0x7c00 || !(h[i] & 0x3ff)) : h[i] != i) bad++;
    }
    printf("f16 -> f32 -> f16, all 65536 values, both paths: %d mismatches\n", bad);
    /* f32 -> f16 rounding: random floats over the whole half range, ties, and the edges */
    int nb = 0, N = 200000;
    float *src = malloc((size_t)N * sizeof(float));
    uint16_t *dst = malloc((size_t)N * sizeof(uint16_t));
    for (int i = 0; i < N; i++) src[i] = frand() * ldexpf(1.0f, (int)(frand() * 20.0f) - 6);
    for (int i = 0; i < 4000; i++) src[i] = frand() * ldexpf(1.0f, -(14 + i % 14));   /* subnormals */
    for (int i = 4000; i < 6000; i++) {   /* exact ties between neighbouring halves */
        uint16_t b = (uint16_t)((i * 37) % 0x7bff);
        src[i] = (float)((half_value(b) + half_value((uint16_t)(b + 1))) / 2.0);
    }
    float edges[] = {65504.0f, 65519.99f, 65520.0f, 1e6f, -65520.0f, INFINITY, -INFINITY, NAN, 0.0f, -0.0f,
                     ldexpf(1.0f, -25), ldexpf(1.5f, -25), ldexpf(1.0f, -26), ldexpf(1.0f, -14), 1e-40f};
    memcpy(src + 6000, edges, sizeof edges);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) k_f32_to_f16(dst, src, (size_t)N);
        else for (int i = 0; i < N; i++) k_f32_to_f16(dst + i, src + i, 1);
        for (int i = 0; i < N; i++) {
            uint16_t want = ref_to_half(src[i]);
            if (isnan(src[i]) ? (dst[i] & 0x7c00) != 0x7c00 || !(dst[i] & 0x3ff) : dst[i] != want) nb++;
        }
    }
    printf("f32 -> f16 rounding (%d values, ties, subnormals, overflow), both paths: %d mismatches\n", N, nb);
    bad += nb;
    /* bf16: every bf16 -> f32 exact; f32 -> bf16 nearest-even against a double reference */
    nb = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) k_bf16_to_f32(f, raw + 1, 65536);
        else for (int i = 0; i < 65536; i++) k_bf16_to_f32(f + i, raw + 1 + 2 * i, 1);
        for (int i = 0; i < 65536; i++) {
            uint32_t u; memcpy(&u, &f[i], 4);
            if (u != (uint32_t)i << 16) nb++;
        }
    }
    for (int i = 0; i < N; i++) {   /* random bit patterns, including nan and inf */
        uint32_t u = (uint32_t)(frand() * 2147483648.0f) * 2u + (i & 1);
        if (i < 8) u = (uint32_t[]){0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u, 0x00000001u,
                                    0x3f808000u, 0x3f818000u, 0x7f7fffffu}[i];
        memcpy(&src[i], &u, 4);
    }
    k_f32_to_bf16(dst, src, (size_t)N);
    for (int i = 0; i < N; i++) {
        uint32_t u; memcpy(&u, &src[i], 4);
        if (isnan(src[i])) { if ((dst[i] & 0x7f80) != 0x7f80 || !(dst[i] & 0x7f)) nb++; continue; }
        uint16_t lo = (uint16_t)(u >> 16), want = lo;
        uint32_t ul = (uint32_t)lo << 16, uh = ul + 0x10000u;
        float fl, fh; memcpy(&fl, &ul, 4); memcpy(&fh, &uh, 4);
        double dl = fabs((double)src[i] - fl), dh = isinf(fh) ? INFINITY : fabs((double)fh - src[i]);
        if (isinf(src[i])) dh = INFINITY;
        if (dh < dl || (dh == dl && (lo & 1))) want = (uint16_t)(lo + 1);
        if ((lo & 0x7fff) == 0x7f7f && ((u & 0xffff) >= 0x8000)) want = (uint16_t)(lo + 1);   /* overflow to inf */
        if (dst[i] != want) nb++;
    }
    printf("bf16 <-> f32 (all bf16 values; %d random f32 incl. nan/inf/ties): %d mismatches\n", N, nb);
    bad += nb;
    if (bad) { printf("conversions FAIL\n"); failures++; }
    free(raw); free(f); free(h); free(src); free(dst);
}

int main(void) {
    sdc_arena_init(&good_arena, (size_t)1 << 20);   /* small blocks: scratch reuse is exercised */
    sdc_arena_init(&no_memory, (size_t)1 << 62);    /* each block request fails in malloc */
    sdc_kernels_set_threads(0);
    printf("threads: %d\n", sdc_kernels_get_threads());
    conv_case("conv 3x3 s1 pad 1 (bias)", 2, 5, 9, 11, 7, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s2 pad 1", 2, 6, 13, 10, 4, 3, 2, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s2 pad (0,1,0,1) asymmetric", 2, 4, 12, 16, 5, 3, 2, 0, 0, 1, 1, 1);
    conv_case("conv 1x1 (bias)", 2, 9, 7, 6, 11, 1, 1, 0, 0, 0, 0, 1);
    conv_case("conv 1x1 (no bias)", 1, 16, 5, 5, 3, 1, 1, 0, 0, 0, 0, 0);
    conv_case("conv 3x3 no pad, no bias", 1, 3, 8, 9, 2, 3, 1, 0, 0, 0, 0, 0);
    conv_case("conv 3x3 s1 pad 1 on 1x1 and 2x2 images", 2, 3, 1, 1, 4, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 pad 1 on 2x3 image", 1, 3, 2, 3, 4, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s2 pad (0,1,0,1) on 2x2 image", 1, 3, 2, 2, 4, 3, 2, 0, 0, 1, 1, 1);
    conv_case("conv 3x3 s1 asymmetric pad (2,0,1,1)", 1, 5, 9, 7, 3, 3, 1, 2, 0, 1, 1, 1);
    conv_case("conv 3x3 s1 Wo=40 Cout=13 (row tail, channel tail)", 2, 7, 5, 40, 13, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 pad (1,0,0,1) Wo=33", 1, 3, 9, 34, 25, 3, 1, 1, 0, 0, 1, 1);
    conv_case("conv 5x5 s1 pad 2 Wo=50", 1, 4, 6, 50, 5, 5, 1, 2, 2, 2, 2, 1);
    conv_case("conv 3x3 s1 no pad Wo=68, no bias", 1, 6, 10, 70, 12, 3, 1, 0, 0, 0, 0, 0);
    conv_case("conv 3x3 s1 16x16", 2, 9, 16, 16, 14, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 13x12 pad (0,1,1,0)", 1, 5, 13, 13, 7, 3, 1, 0, 1, 1, 0, 1);
    conv_case("conv 3x3 s1 Wo=20 (second half 4 wide)", 1, 5, 7, 20, 12, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 1200ch 16x16", 1, 1200, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 600ch 12x40 (several bands)", 1, 600, 12, 40, 3, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 600ch 6x150 pad (1,2,1,0) (column tiles)", 1, 600, 6, 150, 3, 3, 1, 1, 2, 1, 0, 1);
    conv_case("conv 5x5 s1 700ch 5x100 pad 2 (column tiles)", 2, 700, 5, 100, 2, 5, 1, 2, 2, 2, 2, 1);
    conv_case("conv 3x3 s1 2000ch 30x30 (long sums)", 1, 2000, 30, 30, 2, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 4000ch 16x16 (shared tile, 2 tiles)", 1, 4000, 16, 16, 2, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s1 128ch 96x96 (several row tiles)", 1, 128, 96, 96, 4, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s2 64ch 70x70 (several row tiles)", 1, 64, 70, 70, 3, 3, 2, 0, 0, 1, 1, 1);
    wino_case("wino 3x3 2x5ch 9x11 -> 7 (odd sides)", 2, 5, 9, 11, 7, 1, 0);
    wino_case("wino 3x3 1x3ch 1x1 -> 4", 1, 3, 1, 1, 4, 1, 1);
    wino_case("wino 3x3 1x3ch 2x3 -> 13 (no bias)", 1, 3, 2, 3, 13, 0, 0);
    wino_case("wino 3x3 2x16ch 8x8 -> 24 + residual", 2, 16, 8, 8, 24, 1, 1);
    wino_case("wino 3x3 2x32ch 16x16 -> 40", 2, 32, 16, 16, 40, 1, 1);
    wino_case("wino 3x3 1x24ch 64x64 -> 25", 1, 24, 64, 64, 25, 1, 0);
    wino_case("wino 3x3 1x8ch 37x150 -> 12 (column chunks)", 1, 8, 37, 150, 12, 1, 1);
    wino_case("wino 3x3 2x300ch 12x20 -> 50 (wide K)", 2, 300, 12, 20, 50, 1, 0);
    wino_case("wino 3x3 1x600ch 7x33 -> 130 (small chunks)", 1, 600, 7, 33, 130, 0, 1);
    wino_stream_case("wino stream 2x5ch 9x11 -> 7 (odd sides)", 2, 5, 9, 11, 7, 1, 0);
    wino_stream_case("wino stream 1x3ch 2x3 -> 13 (no bias)", 1, 3, 2, 3, 13, 0, 1);
    wino_stream_case("wino stream 2x32ch 16x16 -> 40 + residual", 2, 32, 16, 16, 40, 1, 1);
    wino_stream_case("wino stream 1x8ch 37x150 -> 12 (column chunks)", 1, 8, 37, 150, 12, 1, 1);
    wino_stream_case("wino stream 1x600ch 7x33 -> 130 (small chunks)", 1, 600, 7, 33, 130, 0, 1);
    wino_stream_case("wino stream 1x512ch 40x40 -> 100 (super-chunks)", 1, 512, 40, 40, 100, 1, 1);
    wino_stream_case("wino stream 2x1300ch 8x8 -> 37 (wide K: 4-block groups)", 2, 1300, 8, 8, 37, 1, 0);
    wino_band_case("wino band: rows 4..9 of 13x21, 20 -> 17, +=", 20, 13, 21, 17, 4, 6);
    wino_band_case("wino band: top rows 0..6 (odd count) of 9x140", 16, 9, 140, 12, 0, 7);
    wino_band_case("wino band: bottom rows 10..11 of 12x12", 24, 12, 12, 30, 10, 2);
    att_case("attention self B2 H3 D8 Lq=Lk=37", 2, 37, 37, 3, 8, 0, 0);
    att_case("attention cross B2 H2 D16 Lq=45 Lk=77", 2, 45, 77, 2, 16, 0, 0);
    att_case("attention self, packed qkv rows (ld=3HD)", 2, 29, 29, 2, 8, 0, 1);
    att_case("attention causal Lq=Lk=40", 1, 40, 40, 2, 8, 1, 0);
    att_case("attention causal Lq=20 Lk=30", 2, 20, 30, 2, 8, 1, 0);
    att_case("attention causal Lq=30 Lk=20", 1, 30, 20, 2, 8, 1, 0);
    att_case("attention D=80 Lq=50 Lk=70", 2, 50, 70, 2, 80, 0, 0);
    att_case("attention D=160 Lq=13 Lk=77", 1, 13, 77, 2, 160, 0, 0);
    att_case("attention D=64 H=12 causal 77 (CLIP)", 1, 77, 77, 12, 64, 1, 0);
    att_case("attention D=512 H=1 Lq=20 Lk=33 (VAE mid)", 1, 20, 33, 1, 512, 0, 0);
    att_case("attention D=1 Lq=5 Lk=3", 1, 5, 3, 1, 1, 0, 0);
    {   /* degenerate sizes: no output pixel / no keys must neither crash nor touch out */
        float o[4] = {7, 7, 7, 7}, x[4] = {1, 2, 3, 4}, w9[9] = {0};
        k_conv2d(&arena, o, x, w9, NULL, 1, 1, 2, 2, 1, 3, 3, 1, 0, 0, 0, 0);   /* 2x2 image, 3x3, no pad */
        int ok = o[0] == 7 && o[3] == 7;
        k_attention(&arena, o, x, 2, x, 2, x, 2, 1, 2, 0, 1, 2, 0);           /* Lk = 0: zeros */
        ok = ok && o[0] == 0 && o[3] == 0;
        printf("%-44s %s\n", "degenerate conv (no output) / attention Lk=0", ok ? "ok" : "FAIL");
        failures += !ok;
    }
    att_case("attention Lq=600 Lk=77 (several q tiles)", 1, 600, 77, 2, 40, 0, 0);
    att_case("attention Lq=Lk=1100 (several q tiles)", 1, 1100, 1100, 1, 40, 0, 0);
    att_case("attention causal Lq=Lk=700 (several q tiles)", 1, 700, 700, 1, 16, 1, 0);
    att_case("attention H=3 D=40 Lq=Lk=500 (key blocks)", 2, 500, 500, 3, 40, 0, 0);
    att_case("attention causal H=2 Lq=Lk=450 (key blocks)", 1, 450, 450, 2, 24, 1, 1);
    linear_stream_case("linear stream 700x96 -> 600 (many panels)", 700, 96, 600, 1, 0);
    linear_stream_case("linear stream 700x96 -> 40 (2-3 panels: rows split)", 700, 96, 40, 1, 1);
    linear_stream_case("linear stream 300x320 -> 330 += (no bias)", 300, 320, 330, 0, 1);
    linear_stream_case("linear stream 5x1300 -> 200 (one partial block)", 5, 1300, 200, 1, 0);
    linear_stream_case("linear stream 2x40 -> 1000 += bias", 2, 40, 1000, 1, 1);
    linear_stream_case("linear stream 77x5000 -> 70 (long sums)", 77, 5000, 70, 1, 0);
    group_norm_case(0, 0);
    group_norm_case(1, 0);
    group_norm_case(1, 1);
    layer_norm_case();
    linear_case(1);
    linear_case(0);
    linear_rows_case();
    softmax_case();
    activation_cases();
    layout_cases();
    timestep_case(1, 320, 0.0f);
    timestep_case(0, 320, 1.0f);
    timestep_case(1, 33, 1.0f);
    convert_cases();
#if !defined(__SANITIZE_ADDRESS__)   /* ASan treats a 4 EiB request as an error, not as NULL */
    cur = &no_memory;   /* the kernels' fallbacks when the arena has nothing to give */
    conv_case("conv 3x3 s1 no scratch (direct loop)", 2, 5, 9, 40, 7, 3, 1, 1, 1, 1, 1, 1);
    conv_case("conv 3x3 s2 (0,1,0,1) no scratch", 1, 4, 12, 16, 5, 3, 2, 0, 0, 1, 1, 1);
    att_case("attention no scratch", 2, 37, 45, 3, 8, 0, 0);
    att_case("attention causal no scratch", 1, 30, 20, 2, 8, 1, 0);
    cur = &good_arena;
#endif
    sdc_arena_free(&good_arena);
    sdc_arena_free(&no_memory);
    printf("%s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
    return failures != 0;
}

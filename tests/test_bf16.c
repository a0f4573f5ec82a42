/* test_bf16.c — the bf16 kernels on every path this machine has (plain C always; AVX512-BF16
 * when the CPU has it): Linear (odd sizes, row/column tails, bias, accumulate) and Winograd convs
 * (odd channel counts, odd image sides, batch 2, bias + residual) against the exact sum of the
 * bf16-rounded operands (computed here in double: the kernels' only error beyond the rounding is
 * f32 summation, ~1e-6 relative) and against f32 (relative L2 of the bf16 rounding itself, below
 * 1e-2: the operands carry 8 significant bits, 2^-9 = 2e-3 relative each); the paths against each
 * other; NaN passes through. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static float bf(float f) {   /* round to bf16, nearest even (the kernels' rounding; no NaN here) */
    uint32_t u;
    memcpy(&u, &f, 4);
    if (!(u & 0x7f800000u)) u &= 0x80000000u;
    u += 0x7fffu + ((u >> 16) & 1);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static unsigned seed = 1;
static float rnd(void) { seed = seed * 1664525u + 1013904223u; return ((float)(seed >> 8) / 16777216.0f - 0.5f) * 4.0f; }

/* relative L2 of a against b (double reference) */
static double rel_l2(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i]; }
    return isnan(num) ? INFINITY : sqrt(num / (den > 0 ? den : 1));
}

/* out = bf16 linear on the current path; checks against the exact bf16 sum and f32. */
static void linear_case(sdc_arena *a, int M, int K, int N, int bias, int acc, float *keep) {
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *b = malloc(sizeof(float) * N);
    float *out = malloc(sizeof(float) * M * N);
    double *ex = malloc(sizeof(double) * M * N), *f32 = malloc(sizeof(double) * M * N);
    uint32_t *Wp = malloc(4 * k_linear_bf16_words(N, K));
    for (int i = 0; i < M * K; i++) x[i] = rnd();
    for (int i = 0; i < N * K; i++) w[i] = rnd() / sqrtf((float)K);
    for (int i = 0; i < N; i++) b[i] = rnd();
    for (int i = 0; i < M * N; i++) out[i] = acc ? 0.25f * (float)(i % 7) : NAN;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0, t = 0;
            for (int k = 0; k < K; k++) {
                s += (double)bf(x[m * K + k]) * bf(w[n * K + k]);
                t += (double)x[m * K + k] * w[n * K + k];
            }
            const double base = (bias ? b[n] : 0) + (acc ? out[m * N + n] : 0);
            ex[m * N + n] = s + base;
            f32[m * N + n] = t + base;
        }
    k_linear_bf16_pack(Wp, w, N, K);
    int ok = k_linear_bf16(a, out, x, Wp, bias ? b : NULL, M, K, N, acc);
    CHECK(ok, "linear %dx%dx%d: scratch", M, K, N);
    const double e1 = rel_l2(out, ex, (size_t)M * N), e2 = rel_l2(out, f32, (size_t)M * N);
    printf("  linear M %4d K %4d N %4d bias %d acc %d: rel L2 vs exact bf16 sum %.2e, vs f32 %.2e\n", M, K, N,
           bias, acc, e1, e2);
    CHECK(e1 < 2e-6, "linear %dx%dx%d: %g from the exact bf16 sum", M, K, N, e1);
    CHECK(e2 < 1e-2 && e2 > 1e-5, "linear %dx%dx%d: %g from f32 (bf16 rounding expected ~2e-3)", M, K, N, e2);
    if (keep) memcpy(keep, out, sizeof(float) * M * N);
    free(x); free(w); free(b); free(out); free(ex); free(f32); free(Wp);
}

/* direct 3x3 conv (pad 1) in double, on rounded or plain operands */
static void conv_ref(double *out, const float *in, const float *w, const float *b, const float *res, int N, int Cin,
                     int H, int W, int Cout, int round) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Cout; o++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    double s = b[o];
                    for (int c = 0; c < Cin; c++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = y + ky - 1, ix = x + kx - 1;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                float wi = w[((o * Cin + c) * 3 + ky) * 3 + kx], xi = in[((n * Cin + c) * H + iy) * W + ix];
                                s += round ? (double)bf(wi) * bf(xi) : (double)wi * xi;
                            }
                    size_t at = ((size_t)(n * Cout + o) * H + y) * W + x;
                    out[at] = s + res[at];
                }
}

static void wino_case(sdc_arena *a, int N, int Cin, int H, int W, int Cout, float *keep) {
    const size_t ni = (size_t)N * Cin * H * W, no = (size_t)N * Cout * H * W;
    float *in = malloc(ni * 4), *w = malloc((size_t)Cout * Cin * 9 * 4), *b = malloc(Cout * 4), *res = malloc(no * 4);
    float *out = malloc(no * 4), *U = malloc(k_wino_packed_floats(Cout, Cin) * 4);
    uint32_t *Ub = malloc(k_wino_bf16_words(Cout, Cin) * 4);
    double *exact = malloc(no * 8), *rounded = malloc(no * 8);
    for (size_t i = 0; i < ni; i++) in[i] = rnd();
    for (int i = 0; i < Cout * Cin * 9; i++) w[i] = rnd() / sqrtf(9.0f * Cin);
    for (int i = 0; i < Cout; i++) b[i] = rnd();
    for (size_t i = 0; i < no; i++) res[i] = rnd();
    conv_ref(exact, in, w, b, res, N, Cin, H, W, Cout, 0);
    conv_ref(rounded, in, w, b, res, N, Cin, H, W, Cout, 1);
    k_wino_pack(U, w, Cout, Cin);
    k_wino_bf16_pack(Ub, U, Cout, Cin);
    int ok = k_conv3x3_wino_bf16(a, out, in, Ub, b, res, N, Cin, H, W, Cout);
    CHECK(ok, "wino bf16: scratch");
    const double e1 = rel_l2(out, exact, no), e2 = rel_l2(out, rounded, no);
    /* the Winograd domain rounds its own operands (G g Gᵀ and Bᵀ d B), so it is compared with f32
     * (the truth) and, for scale, with the direct conv on bf16-rounded operands */
    printf("  wino N %d Cin %3d Cout %3d %3dx%-3d: rel L2 vs f32 %.2e (direct conv of bf16 operands: %.2e)\n", N,
           Cin, Cout, H, W, e1, e2);
    CHECK(e1 < 1e-2, "wino bf16: %g from f32", e1);
    if (keep) memcpy(keep, out, no * 4);
    free(in); free(w); free(b); free(res); free(out); free(U); free(Ub); free(exact); free(rounded);
}

static const int LIN[][5] = {{37, 67, 45, 1, 0}, {1, 64, 32, 0, 0}, {200, 320, 960, 1, 1}, {13, 1280, 33, 0, 1}};
static const int WIN[][5] = {{2, 9, 7, 19, 13}, {1, 64, 16, 16, 64}, {1, 320, 32, 32, 40}};

int main(void) {
    sdc_kernels_set_threads(2);
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    printf("bf16 path chosen: %s (CPU avx512_bf16: %s)\n", k_bf16_path_name(), k_bf16_hw() ? "yes" : "no");
    const char *paths[2] = {"plain", "avx512_bf16"};
    float *keep[2][7] = {{0}};
    size_t sizes[7];
    int ran[2] = {0, 0};
    for (int p = 0; p < 2; p++) {
        if (k_bf16_select(paths[p])) { printf("path %s: not on this CPU\n", paths[p]); continue; }
        ran[p] = 1;
        printf("path %s (%s):\n", paths[p], k_bf16_path_name());
        seed = 1;
        for (int i = 0; i < 4; i++) {
            sizes[i] = (size_t)LIN[i][0] * LIN[i][2];
            keep[p][i] = malloc(sizes[i] * 4);
            linear_case(&a, LIN[i][0], LIN[i][1], LIN[i][2], LIN[i][3], LIN[i][4], keep[p][i]);
        }
        for (int i = 0; i < 3; i++) {
            sizes[4 + i] = (size_t)WIN[i][0] * WIN[i][4] * WIN[i][2] * WIN[i][3];
            keep[p][4 + i] = malloc(sizes[4 + i] * 4);
            wino_case(&a, WIN[i][0], WIN[i][1], WIN[i][2], WIN[i][3], WIN[i][4], keep[p][4 + i]);
        }
        /* NaN in, NaN out (not flushed to a number by the rounding) */
        float x[4] = {1, NAN, 2, 3}, w[8] = {1, 1, 1, 1, 1, 1, 1, 1}, o[2];
        uint32_t Wp[64];
        k_linear_bf16_pack(Wp, w, 2, 4);
        k_linear_bf16(&a, o, x, Wp, NULL, 1, 4, 2, 0);
        CHECK(isnan(o[0]) && isnan(o[1]), "NaN input gave %g %g", o[0], o[1]);
    }
    if (ran[0] && ran[1]) {
        double worst = 0;
        for (int i = 0; i < 7; i++)
            for (size_t j = 0; j < sizes[i]; j++) {
                double d = fabs((double)keep[0][i][j] - keep[1][i][j]) / (1e-3 + fabs((double)keep[0][i][j]));
                if (d > worst) worst = d;
            }
        printf("plain C vs avx512_bf16: largest relative difference %.2e\n", worst);
        CHECK(worst < 1e-5, "the paths differ by %g (same rounding, f32 sums in another order at most)", worst);
    }
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 7; i++) free(keep[p][i]);
    sdc_arena_free(&a);
    if (fails) { printf("%d check(s) failed\n", fails); return 1; }
    printf("ok\n");
    return 0;
}

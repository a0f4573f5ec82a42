/* test_kernels_isa.c — one binary, both kernel copies: this program runs itself twice, once with
 * SDC_CPU unset and once with SDC_CPU=avx2. A portable build must report "AVX-512" in the first
 * (on a CPU with AVX-512 F/CD/BW/DQ/VL, else "AVX2") and "AVX2" in the second, and every vector
 * kernel (activations, norms, softmax, attention, direct and Winograd convs, the VAE's GroupNorm
 * steps) must give the same results on both within f32 rounding (the AVX-512 copy is checked
 * against references in test_kernels; here the AVX2 copy is checked against it). A run of the
 * same copy gives the same bits; the streamed Linear gives the same bits on both copies (one
 * ordered sum per element, whatever the vector width). Builds without the run-time choice (-DSDC_NATIVE=ON, non-x86)
 * check only that SDC_CPU changes nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "tests/test_util.h"

#define NOUT 10   /* result arrays */

static float *fill(size_t n, unsigned seed, float scale) {
    float *x = malloc(n * sizeof *x);
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = scale * ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
    return x;
}

/* k_rows_fn over a [N, 300] f32 matrix (ctx) */
static int lin_rows(void *ctx, float *dst, int r0, int nr) {
    memcpy(dst, (const float *)ctx + (size_t)r0 * 300, (size_t)nr * 300 * sizeof(float));
    return 0;
}

/* Every vector kernel once on fixed inputs; out[k] (malloc'd), len[k] floats. */
static void compute(float *out[NOUT], size_t len[NOUT]) {
    sdc_arena a;
    sdc_arena_init(&a, (size_t)16 << 20);
    sdc_kernels_set_threads(2);
    int k = 0;
    /* activations: n not a multiple of any vector width */
    const size_t n = 5003;
    float *x;
    x = fill(n, 1, 16.0f); k_silu(x, n); out[k] = x; len[k++] = n;
    x = fill(n, 2, 16.0f); k_gelu(x, n); out[k] = x; len[k++] = n;
    /* GroupNorm + SiLU: 2 images, 32 channels, 8 groups, 19x23 */
    const int N = 2, C = 32, HW = 19 * 23;
    float *in = fill((size_t)N * C * HW, 3, 4.0f), *g = fill(C, 4, 2.0f), *b = fill(C, 5, 1.0f);
    x = malloc(sizeof(float) * N * C * HW);
    k_group_norm(x, in, g, b, N, C, HW, 8, 1e-5f, 1); out[k] = x; len[k++] = (size_t)N * C * HW;
    /* LayerNorm over 77 rows of 320 */
    float *li = fill(77 * 320, 6, 3.0f), *lg = fill(320, 7, 2.0f), *lb = fill(320, 8, 1.0f);
    x = malloc(sizeof(float) * 77 * 320);
    k_layer_norm(x, li, lg, lb, 77, 320, 1e-5f); out[k] = x; len[k++] = 77 * 320;
    /* softmax rows of 77 (a tail for every width) */
    x = fill(50 * 77, 9, 20.0f); k_softmax(x, 50, 77); out[k] = x; len[k++] = 50 * 77;
    /* attention: B2 H2 D40, self 96x96 */
    const int B = 2, H = 2, D = 40, L = 96;
    float *q = fill((size_t)B * L * H * D, 10, 2.0f), *kk = fill((size_t)B * L * H * D, 11, 2.0f),
          *v = fill((size_t)B * L * H * D, 12, 2.0f);
    x = malloc(sizeof(float) * B * L * H * D);
    k_attention(&a, x, q, H * D, kk, H * D, v, H * D, B, L, L, H, D, 0); out[k] = x; len[k++] = (size_t)B * L * H * D;
    /* 3x3 stride-1 conv, rows wider than 16 (the AVX-512 direct path), and the Winograd conv */
    const int Ci = 24, Co = 20, Hh = 21, Ww = 37;
    float *ci = fill((size_t)Ci * Hh * Ww, 13, 2.0f), *cw = fill((size_t)Co * Ci * 9, 14, 0.5f), *cb = fill(Co, 15, 1.0f);
    x = malloc(sizeof(float) * Co * Hh * Ww);
    k_conv2d(&a, x, ci, cw, cb, 1, Ci, Hh, Ww, Co, 3, 3, 1, 1, 1, 1, 1); out[k] = x; len[k++] = (size_t)Co * Hh * Ww;
    float *U = malloc(sizeof(float) * k_wino_packed_floats(Co, Ci));
    k_wino_pack(U, cw, Co, Ci);
    x = malloc(sizeof(float) * Co * Hh * Ww);
    if (!k_conv3x3_wino(&a, x, ci, U, cb, NULL, 1, Ci, Hh, Ww, Co)) memset(x, 0xff, sizeof(float) * Co * Hh * Ww);
    out[k] = x; len[k++] = (size_t)Co * Hh * Ww;
    /* the streamed Linear: 50 rows (a tail block on both widths), 7 panels of AVX-512 (a short one) */
    {
        const int M = 50, K = 300, Nl = 200;
        float *li2 = fill((size_t)M * K, 16, 2.0f), *lw = fill((size_t)Nl * K, 17, 0.2f), *lbias = fill(Nl, 18, 1.0f);
        x = fill((size_t)M * Nl, 19, 1.0f);   /* accumulated into */
        if (!k_linear_stream(&a, x, li2, lin_rows, lw, lbias, M, K, Nl, 1)) memset(x, 0xff, sizeof(float) * M * Nl);
        out[k] = x; len[k++] = (size_t)M * Nl;
        free(li2); free(lw); free(lbias);
    }
    /* the VAE's GroupNorm steps */
    x = malloc(sizeof(float) * (n + 2));
    x[0] = (float)k_sum(in, (size_t)N * C * HW);
    x[1] = (float)k_sum_sq_centred(in, (size_t)N * C * HW, x[0] / (float)(N * C * HW));
    k_affine(x + 2, in, n, 1.5f, -0.25f, 1);
    out[k] = x; len[k++] = n + 2;
    free(in); free(g); free(b); free(li); free(lg); free(lb); free(q); free(kk); free(v);
    free(ci); free(cw); free(cb); free(U);
    sdc_arena_free(&a);
}

/* Runs this program as a child with SDC_CPU = cpu (NULL: unset); reads its ISA name and results. */
static int run_child(const char *self, const char *cpu, char isa[64], float *out[NOUT], size_t len[NOUT]) {
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t p = fork();
    if (p < 0) return -1;
    if (p == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        if (cpu) setenv("SDC_CPU", cpu, 1);
        else unsetenv("SDC_CPU");
        execl(self, self, "--child", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "rb");
    int bad = !f || fread(isa, 1, 64, f) != 64;
    for (int k = 0; k < NOUT && !bad; k++) {
        bad = fread(&len[k], sizeof len[k], 1, f) != 1 || !(out[k] = malloc(len[k] * sizeof(float))) ||
              fread(out[k], sizeof(float), len[k], f) != len[k];
    }
    if (f) fclose(f);
    int st = 0;
    waitpid(p, &st, 0);
    return bad || !WIFEXITED(st) || WEXITSTATUS(st) ? -1 : 0;
}

int main(int argc, char **argv) {
    float *o[NOUT];
    size_t len[NOUT];
    if (argc > 1 && !strcmp(argv[1], "--child")) {
        char isa[64] = {0};
        snprintf(isa, sizeof isa, "%s", sdc_kernels_isa());
        compute(o, len);
        fwrite(isa, 1, 64, stdout);
        for (int k = 0; k < NOUT; k++) {
            fwrite(&len[k], sizeof len[k], 1, stdout);
            fwrite(o[k], sizeof(float), len[k], stdout);
            free(o[k]);
        }
        return 0;
    }
    static const char *names[NOUT] = {"silu", "gelu", "group_norm+silu", "layer_norm", "softmax",
                                      "attention", "conv2d 3x3", "winograd 3x3", "linear stream", "sum/sumsq/affine"};
    char isa_auto[64], isa_avx2[64];
    float *oa[NOUT], *o2[NOUT];
    size_t la[NOUT], l2[NOUT];
    if (run_child("/proc/self/exe", NULL, isa_auto, oa, la) || run_child("/proc/self/exe", "avx2", isa_avx2, o2, l2)) {
        printf("FAIL: a child run failed\n");
        return 1;
    }
    printf("SDC_CPU unset: %s; SDC_CPU=avx2: %s\n", isa_auto, isa_avx2);
    int fails = 0, dispatch = !strstr(isa_auto, "native") && strcmp(isa_auto, "scalar");
    if (dispatch) {
        __builtin_cpu_init();
        int has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512vl");
        const char *want = has512 ? "AVX-512" : "AVX2";
        if (strcmp(isa_auto, want)) { printf("FAIL: SDC_CPU unset runs %s, expected %s\n", isa_auto, want); fails++; }
        if (strcmp(isa_avx2, "AVX2")) { printf("FAIL: SDC_CPU=avx2 runs %s, expected AVX2\n", isa_avx2); fails++; }
    } else if (strcmp(isa_auto, isa_avx2)) {
        printf("FAIL: a build without run-time choice changed with SDC_CPU (%s, %s)\n", isa_auto, isa_avx2);
        fails++;
    }
    /* this process runs the copy SDC_CPU selects in its own environment: the same bits as that child */
    compute(o, len);
    const char *env = getenv("SDC_CPU");
    float **same = env && !strcasecmp(env, "avx2") ? o2 : oa;
    for (int k = 0; k < NOUT; k++) {
        double mx, d = tu_max_abs_diff(o2[k], oa[k], len[k], &mx);
        const double tol = strcmp(names[k], "linear stream") ? 2e-6 * (mx > 1.0 ? mx : 1.0) : 0.0;   /* same bits */
        int ok = la[k] == len[k] && l2[k] == len[k] && d <= tol &&
                 !memcmp(o[k], same[k], len[k] * sizeof(float));
        printf("%s %-18s AVX2 vs default: max|d| %.3g (max|x| %.3g)%s\n", ok ? "ok  " : "FAIL", names[k], d, mx,
               memcmp(o[k], same[k], len[k] * sizeof(float)) ? ", NOT the same bits as its own copy's run" : "");
        fails += !ok;
        free(o[k]); free(oa[k]); free(o2[k]);
    }
    return fails != 0;
}

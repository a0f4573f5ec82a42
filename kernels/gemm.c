/* gemm.c — the thread count, OpenBLAS's kernel choice, the sgemm wrapper and Linear.
 * Owns one process-wide fact: that OpenBLAS runs the GEMM kernels this CPU can run (below). */
#include "kernels/kernels.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/kernels_internal.h"

/* OpenBLAS built with DYNAMIC_ARCH picks its kernels by CPU model at load. Releases older than
 * the CPU (0.3.21 on a family 6 model 207 Xeon) do not know the model and fall back to Prescott
 * (SSE3) kernels: sgemm ran at 29 GFLOP/s instead of 154 on one core here. When the CPU can run
 * AVX-512 (or AVX2+FMA) kernels and OpenBLAS chose something older, re-initialise it with the
 * matching core type, exactly as OPENBLAS_CORETYPE would at load. A user's OPENBLAS_CORETYPE is
 * respected. The entry points are weak: a BLAS without DYNAMIC_ARCH lacks them and is left as is. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

static int core_is_one_of(const char *core, const char *const *names) {
    for (; *names; names++)
        if (!strcasecmp(core, *names)) return 1;
    return 0;
}

/* The OpenBLAS core this CPU should run when `core` is older than it can run, else NULL. */
static const char *better_core(const char *core) {
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return core_is_one_of(core, avx512) ? NULL : "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return core_is_one_of(core, avx2) ? NULL : "Haswell";
    return NULL;
}

static void blas_core_fix(void) {
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !openblas_get_corename) return;
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *want = better_core(openblas_get_corename());
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 0);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

void kint_init(void) { pthread_once(&init_once, blas_core_fix); }

const char *sdc_kernels_blas_core(void) {
    kint_init();
    return openblas_get_corename ? openblas_get_corename() : "unknown";
}

/* A user's OPENBLAS_CORETYPE is respected, even when it names older kernels than the CPU runs
 * (some machine images set Haswell for every CPU); this says so, so that the user can choose. */
const char *sdc_kernels_blas_note(void) {
    static char note[256];
    const char *env = getenv("OPENBLAS_CORETYPE");
    kint_init();
    if (!env || !openblas_get_corename) return NULL;
    const char *want = better_core(openblas_get_corename());
    if (!want) return NULL;
    snprintf(note, sizeof note, "OPENBLAS_CORETYPE=%s makes OpenBLAS run %s kernels where this CPU runs %s "
             "(GEMMs up to ~1.7x slower); unset it to let sdc choose", env, openblas_get_corename(), want);
    return note;
}

void sdc_kernels_set_threads(int n) {
    kint_init();
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int sdc_kernels_get_threads(void) { kint_init(); return omp_get_max_threads(); }

/* Rows of C per thread from which each thread runs its own one-thread sgemm on a slice of A's
 * rows instead of one OpenBLAS-threaded call: at the UNet's 64x64 and 32x32 Linear shapes (M =
 * 8192 or 2048 rows, K 320..2560) that ran 2-26% faster on 2 threads (OpenBLAS's own split packs
 * B in every thread and synchronises them); with fewer rows OpenBLAS's split is as good or better.
 * Each element of C is the same sum either way (the split never cuts K). */
#define GEMM_ROWS_PER_THREAD 1024

void k_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    kint_init();
    const CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    const int nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (transA || nthr < 2 || M < GEMM_ROWS_PER_THREAD * nthr) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    #pragma omp parallel num_threads(nthr)
    {   /* rows m0 .. m1-1 (multiples of 16 but the last) of the team OpenMP actually gave (fewer
         * than asked under OMP_DYNAMIC or OMP_THREAD_LIMIT); OpenBLAS runs one-threaded in here */
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int m0 = (int)((long)M * t / nt) / 16 * 16;
        const int m1 = t == nt - 1 ? M : (int)((long)M * (t + 1) / nt) / 16 * 16;
        if (m1 > m0)
            cblas_sgemm(CblasRowMajor, ta, tb, m1 - m0, N, K, alpha, A + (size_t)m0 * lda, lda, B, ldb, beta,
                        C + (size_t)m0 * ldc, ldc);
    }
}

/* Outputs below this many floats get their bias filled on one thread (a parallel region costs
 * more than it saves under ~64 KiB). */
#define LIN_PAR_MIN ((size_t)1 << 14)

/* out[M,N] = in[M,K] · w[N,K]ᵀ + b[N] */
void k_linear(float *out, const float *in, const float *w, const float *b, int M, int K, int N) {
    float beta = 0.0f;
    kint_init();
    if (b) {   /* on all threads: at K = 320 this pass costs a sixth of the GEMM's time */
        #pragma omp parallel for schedule(static) if ((size_t)M * N > LIN_PAR_MIN)
        for (int i = 0; i < M; i++) memcpy(out + (size_t)i * N, b, (size_t)N * sizeof(float));
        beta = 1.0f;
    }
    k_sgemm(0, 1, M, N, K, 1.0f, in, K, w, K, beta, out, N);
}

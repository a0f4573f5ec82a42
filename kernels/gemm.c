/* gemm.c — the thread count, the sgemm wrapper, Linear and conv2d (im2col in row tiles + sgemm).
 * Owns no state beyond the thread count OpenMP and OpenBLAS already hold. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

void sdc_kernels_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int sdc_kernels_get_threads(void) { return omp_get_max_threads(); }

void k_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* out[M,N] = in[M,K] · w[N,K]ᵀ + b[N] */
void k_linear(float *out, const float *in, const float *w, const float *b, int M, int K, int N) {
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < M; i++) memcpy(out + (size_t)i * N, b, (size_t)N * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, in, K, w, K, beta, out, N);
}

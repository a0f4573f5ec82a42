/* test_gemm_dynamic.c — k_linear / k_sgemm fill every row of C when OpenMP gives a parallel
 * region fewer threads than asked (dynamic adjustment on: OMP_DYNAMIC=true, or an application
 * that calls omp_set_dynamic(1)). With dynamic adjustment libgomp never gives a team more
 * threads than there are CPUs online, so asking for twice that makes the team smaller than the
 * thread count k_sgemm's row slices are cut for. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/kernels.h"

int main(void) {
    const int nthr = 2 * omp_get_num_procs();
    sdc_kernels_set_threads(nthr);
    omp_set_dynamic(1);
    /* enough rows for k_sgemm's own row split (>= 1024 a thread), 37 past a slice seam */
    const int M = 1024 * nthr + 37, K = 8, N = 4;
    float *x = malloc((size_t)M * K * sizeof(float)), *w = malloc((size_t)N * K * sizeof(float));
    float *out = malloc((size_t)M * N * sizeof(float));
    if (!x || !w || !out) { printf("out of memory\n"); return 1; }
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = (float)(i % 7) - 3.0f;
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (float)(i % 5) - 2.0f;
    for (size_t i = 0; i < (size_t)M * N; i++) out[i] = -1e30f;
    k_linear(out, x, w, NULL, M, K, N);
    long bad = 0, first = -1;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = 0.0;   /* small integers: exact in f32 */
            for (int k = 0; k < K; k++) acc += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
            if (out[(size_t)m * N + n] != (float)acc) { bad++; if (first < 0) first = m; }
        }
    printf("k_linear %d rows, %d threads asked, dynamic on: %ld wrong outputs (first row %ld) %s\n", M,
           nthr, bad, first, bad ? "FAIL" : "ok");
    free(x); free(w); free(out);
    return bad != 0;
}

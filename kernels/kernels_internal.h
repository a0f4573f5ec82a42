/* kernels_internal.h — helpers shared between the kernel files; not part of the kernels API. */
#ifndef SDC_KERNELS_INTERNAL_H
#define SDC_KERNELS_INTERNAL_H

/* x[cols] = softmax(x), in place. */
void kint_softmax_row(float *x, int cols);

/* Once per process, before the first GEMM: make OpenBLAS use this CPU's kernels (gemm.c). */
void kint_init(void);

#endif

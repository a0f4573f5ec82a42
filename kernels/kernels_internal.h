/* kernels_internal.h — helpers shared between the kernel files; not part of the kernels API. */
#ifndef SDC_KERNELS_INTERNAL_H
#define SDC_KERNELS_INTERNAL_H

/* x[cols] = softmax(x), in place. */
void kint_softmax_row(float *x, int cols);

/* Once per process, before the first GEMM: make OpenBLAS use this CPU's kernels (gemm.c). */
void kint_init(void);

/* 1 when the AVX-512 copies of the vector kernels run (kernels/isa.h): a portable build on a CPU
 * with AVX-512 F/CD/BW/DQ/VL (and the OS saving its state), unless SDC_CPU=avx2. Decided once. */
int kint_isa_avx512(void);

#endif

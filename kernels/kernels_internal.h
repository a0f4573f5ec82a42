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

/* bf16 (kernels/bf16.c): f (f32) rounded to bf16 bits, nearest even, NaN quiet, denormals ±0. */
#include <stddef.h>
#include <stdint.h>
uint16_t kint_bf16_round(float f);
/* dst[i] = bf16(lo[i]) | bf16(hi[i]) << 16, i < n: a row of vdpbf16ps operand pairs. */
void kint_bf16_pairs(uint32_t *dst, const float *lo, const float *hi, int n);
/* C[r·ldc + j] = Σ_kp pair products of a[kp·12 + r] and b[kp·ldb + j] (+ bias[j]) (+ C when acc),
 * r < nr <= 12, j < nc <= 32, on the chosen path (b readable to j < 16·ceil(nc/16)). */
void kint_bf16_block(float *C, size_t ldc, const uint32_t *a, const uint32_t *b, size_t ldb, int KP, int nr,
                     int nc, const float *bias, int acc);

#endif

/* rng.h — PyTorch's CPU generator, bit for bit: torch.manual_seed(s); torch.randn(shape) gives
 * the same floats as sdc_rng_seed(&r, s); sdc_rng_randn(&r, out, numel). Successive draws from one
 * generator continue its stream as PyTorch's do (ancestral samplers draw per-step noise). */
#ifndef SDC_RNG_H
#define SDC_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_rng {
    uint32_t mt[624];
    int      mti;
    /* PyTorch keeps a cached second Box-Muller value for scalar normal draws. */
    int      has_next_normal;
    double   next_normal;
    int      has_next_normal_f;
    float    next_normal_f;
} sdc_rng;

void sdc_rng_seed(sdc_rng *r, uint64_t seed);
/* out[n] = torch.randn(n) (float32) from this generator, advancing it exactly as PyTorch does
 * (PyTorch takes a different path for n < 16 and n >= 16). */
void sdc_rng_randn(sdc_rng *r, float *out, size_t n);

#endif

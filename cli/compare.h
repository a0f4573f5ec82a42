/* compare.h — tensor-by-tensor comparison of two tensor stores (what `sdc compare` reports).
 *
 * Owns: the comparison result (one record per tensor name in A ∪ B, malloc'd, freed by
 * sdc_cmp_result_free). Does not own the stores: the records point at their tensors and names,
 * so the stores must outlive the result.
 *
 * Tensors are matched by name: the name itself, or with opts->map_diffusers its name in the original
 * (ldm single-file) layout, so that a diffusers folder or a diffusers-layout file (UNet, VAE, SD 1.x
 * CLIP text encoder) lines up with an original checkpoint. For a common name with equal shapes the values are
 * compared as numbers, whatever the dtypes: every float dtype is widened to f32 by
 * sdc_tensor_to_f32 (exact for F16/BF16/F8) and then to f64; F64 and the integer dtypes are read
 * straight into f64 (exact up to 2^53). So an F16 file and the F32 file it came from compare
 * "equal values" when the F32 values were f16-exact, and a BF16 copy reports its true rounding. */
#ifndef SDC_COMPARE_H
#define SDC_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/store.h"

/* Tolerance, numpy.allclose style: an element passes when |a-b| <= atol + rtol*max(|a|,|b|).
 * Both 0 (the default): only equal values pass. */
typedef struct sdc_cmp_opts {
    double atol, rtol;
    /* When n_only > 0, only names starting with one of these prefixes are compared (on both
     * sides); the others are skipped and not counted (e.g. "model.diffusion_model."). */
    const char *const *only;
    int n_only;
    /* 1: rename diffusers-layout tensors to their original-layout names before matching, as
     * diffusers' convert_diffusers_to_original_stable_diffusion.py does (UNet2DConditionModel →
     * model.diffusion_model.*, AutoencoderKL → first_stage_model.*, CLIPTextModel →
     * cond_stage_model.transformer.*), and, when a side had names renamed, let shapes that differ
     * only by size-1 dims match (the VAE attention's Linear [C,C] vs the original 1x1 conv
     * [C,C,1,1]). Original-layout names are never touched. */
    int map_diffusers;
} sdc_cmp_opts;

/* Opens a model into s for comparison: a model file (any format the store reads), or a diffusers
 * folder: the safetensors (else .bin) files of its unet/, vae/ and text_encoder/ subfolders,
 * each one file of the store. Returns 0, or -1 with e set. */
int sdc_cmp_open(sdc_store *s, const char *path, const sdc_load_opts *opts, sdc_err *e);

/* Per tensor, from best to worst. Values are stable (appended only). */
typedef enum sdc_cmp_kind {
    SDC_CMP_IDENTICAL,   /* same dtype, shape and bytes */
    SDC_CMP_EQUAL,       /* every value equal (dtype differs, or only -0/+0 or NaN bits differ) */
    SDC_CMP_WITHIN_TOL,  /* some values differ, all within the tolerance */
    SDC_CMP_DIFFERENT,   /* some value outside the tolerance (or NaN against a number) */
    SDC_CMP_SHAPE,       /* shapes differ: values not compared */
    SDC_CMP_ONLY_A,      /* name only in A */
    SDC_CMP_ONLY_B,      /* name only in B */
    SDC_CMP_KIND_COUNT
} sdc_cmp_kind;

const char *sdc_cmp_kind_name(sdc_cmp_kind k);  /* "identical", "equal values", ... */

typedef struct sdc_cmp_entry {
    const char       *name;      /* the matched name (original layout when mapped); owned by the
                                    store or the result */
    const char       *name_a, *name_b;  /* as stored in A / B (NULL on the side that lacks it) */
    int               reshaped;  /* shapes equal only after dropping size-1 dims (map_diffusers) */
    const sdc_tensor *a, *b;     /* NULL on the side that lacks it */
    sdc_cmp_kind      kind;
    /* Only for tensors whose values were compared (kind <= SDC_CMP_DIFFERENT): */
    double   max_abs;            /* max |a-b| (inf when a NaN meets a number) */
    double   max_rel;            /* max |a-b| / max(|a|,|b|) over elements that differ */
    int64_t  n_diff;             /* elements whose values differ */
    int64_t  n_out;              /* elements outside the tolerance */
    int64_t  at;                 /* flat index of the largest |a-b| (-1 if none differ) */
    double   a_at, b_at;         /* the two values there */
} sdc_cmp_entry;

typedef struct sdc_cmp_result {
    sdc_cmp_entry *e;            /* A's tensors in file order, then the names only in B */
    size_t         n;
    size_t         count[SDC_CMP_KIND_COUNT];
    size_t         n_dtype_diff; /* common tensors whose dtypes differ */
    double         max_abs, max_rel;       /* over all compared tensors */
    const char    *max_abs_name, *max_rel_name;  /* NULL when nothing differs */
    uint64_t       elems_compared;
    size_t         n_skipped;    /* tensors (of A and of B) left out by opts->only */
    size_t         n_mapped_a, n_mapped_b;  /* diffusers names renamed (map_diffusers) */
    char         **own;  size_t n_own;      /* the renamed names (freed with the result) */
} sdc_cmp_result;

/* Compares every tensor of a with b by name. opts may be NULL (exact). Returns 0 (whatever
 * the differences: they are in r), or -1 with e set (out of memory, a tensor that cannot be
 * converted, two tensors of one side under one name after renaming). r is zeroed first; free it
 * with sdc_cmp_result_free either way. */
int  sdc_compare_stores(const sdc_store *a, const sdc_store *b, const sdc_cmp_opts *opts,
                        sdc_cmp_result *r, sdc_err *e);
void sdc_cmp_result_free(sdc_cmp_result *r);

/* 1 when a and b hold the same tensors with values equal or within the tolerance (dtypes may
 * differ), else 0: the answer `sdc compare` turns into its exit status. */
int sdc_cmp_same(const sdc_cmp_result *r);

/* Image comparison for the output level: a and b are w*h*3 bytes. */
typedef struct sdc_img_diff {
    int    max_abs;              /* 0..255 over all channels */
    double mse;                  /* mean squared error in 8-bit units */
    double psnr;                 /* dB; INFINITY when identical */
    int64_t n_diff;              /* pixels (not channels) that differ */
} sdc_img_diff;
sdc_img_diff sdc_image_diff(const uint8_t *a, const uint8_t *b, int w, int h);

/* Writes into out (h rows of 3*w pixels, RGB) the picture A | B | heat map of |A-B|: the
 * per-pixel max channel difference, multiplied by gain and clamped to 255, through a
 * black-red-yellow-white colour ramp. out holds 3*w*h*3 bytes. Returns the gain used: 255/max
 * difference (so the largest difference is white), or 0 when the images are identical (black). */
double sdc_image_side_by_side(const uint8_t *a, const uint8_t *b, int w, int h, uint8_t *out);

#endif

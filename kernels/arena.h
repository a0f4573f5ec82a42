/* arena.h — a bump allocator for activations and kernel scratch.
 *
 * Owns: a list of big blocks. sdc_arena_alloc hands out 64-byte-aligned pieces; nothing is
 * freed piecewise. sdc_arena_mark/sdc_arena_reset pop everything allocated after a mark, so a
 * forward pass allocates freely and the caller resets once per step: after the first step the
 * blocks are reused and no malloc happens in the hot loop. When the current block is full a new
 * block is malloc'd (at least `block_size`, or the request), so the arena never fails for lack
 * of a size guess; it fails (returns NULL) only when malloc does. `peak` is the high-water mark. */
#ifndef SDC_ARENA_H
#define SDC_ARENA_H

#include <stddef.h>

typedef struct sdc_arena_block {
    struct sdc_arena_block *next;
    size_t size, used;
    char  *data;
} sdc_arena_block;

typedef struct sdc_arena {
    sdc_arena_block *head;      /* first block */
    sdc_arena_block *cur;       /* block being filled */
    size_t block_size;          /* default size of a new block */
    size_t in_use;              /* bytes handed out now (incl. alignment) */
    size_t peak;                /* max in_use ever */
} sdc_arena;

typedef struct sdc_arena_mark { sdc_arena_block *blk; size_t used, in_use; } sdc_arena_mark;

void  sdc_arena_init(sdc_arena *a, size_t block_size);
void  sdc_arena_free(sdc_arena *a);                 /* frees every block; safe on a zeroed arena */
void *sdc_arena_alloc(sdc_arena *a, size_t bytes);  /* 64-byte aligned, uninitialised; NULL on OOM */
float *sdc_arena_f32(sdc_arena *a, size_t n);       /* n floats */
sdc_arena_mark sdc_arena_get_mark(const sdc_arena *a);
void  sdc_arena_reset(sdc_arena *a, sdc_arena_mark m); /* frees (for reuse) all allocated after m */

#endif

/* arena.c — the bump allocator of arena.h. */
#include "kernels/arena.h"

#include <stdlib.h>

#define ARENA_ALIGN 64

void sdc_arena_init(sdc_arena *a, size_t block_size) {
    a->head = a->cur = NULL;
    a->block_size = block_size ? block_size : ((size_t)64 << 20);
    a->in_use = a->peak = 0;
}

void sdc_arena_free(sdc_arena *a) {
    if (!a) return;
    for (sdc_arena_block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b->data);
        free(b);
    }
    a->head = a->cur = NULL;
    a->in_use = 0;
}

static sdc_arena_block *block_new(size_t size) {
    sdc_arena_block *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    if (posix_memalign((void **)&b->data, ARENA_ALIGN, size) != 0) { free(b); return NULL; }
    b->size = size;
    return b;
}

void *sdc_arena_alloc(sdc_arena *a, size_t bytes) {
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < bytes) return NULL;
    if (!a->cur) {
        if (!a->head && !(a->head = block_new(need > a->block_size ? need : a->block_size))) return NULL;
        a->cur = a->head;
        a->cur->used = 0;
    }
    /* Walk to a block with room: reuse the following blocks first, else append a new one. */
    while (a->cur->size - a->cur->used < need) {
        sdc_arena_block *nx = a->cur->next;
        if (nx && nx->size >= need) { nx->used = 0; a->cur = nx; break; }
        if (nx && nx->size < need) {   /* too small for this request: replace it */
            sdc_arena_block *big = block_new(need > a->block_size ? need : a->block_size);
            if (!big) return NULL;
            big->next = nx->next;
            free(nx->data);
            free(nx);
            a->cur->next = big;
            a->cur = big;
            break;
        }
        sdc_arena_block *b = block_new(need > a->block_size ? need : a->block_size);
        if (!b) return NULL;
        a->cur->next = b;
        a->cur = b;
        break;
    }
    void *p = a->cur->data + a->cur->used;
    a->cur->used += need;
    a->in_use += need;
    if (a->in_use > a->peak) a->peak = a->in_use;
    return p;
}

float *sdc_arena_f32(sdc_arena *a, size_t n) {
    if (n > ((size_t)-1) / sizeof(float)) return NULL;
    return sdc_arena_alloc(a, n * sizeof(float));
}

sdc_arena_mark sdc_arena_get_mark(const sdc_arena *a) {
    sdc_arena_mark m = {a->cur, a->cur ? a->cur->used : 0, a->in_use};
    return m;
}

void sdc_arena_reset(sdc_arena *a, sdc_arena_mark m) {
    /* Blocks after m.blk are kept for reuse (their used is reset when they are entered). */
    a->cur = m.blk;
    if (m.blk) m.blk->used = m.used;
    a->in_use = m.in_use;
}

/* fuzz_prompt.c — libFuzzer harness for the prompt parser (pipeline/prompt.c): any bytes as a
 * prompt (cut at the first NUL): <lora:...> tags taken out, then the emphasis runs, and the
 * chunks in both modes with two textual-inversion embeddings (a one-token name with 3 rows, a
 * two-token name with 70 rows, so chunks overflow around them). Checks what every caller relies
 * on: 1..SDC_PROMPT_MAX_CHUNKS chunks, each 77 ids from BOS, ids in the vocabulary, an embedding
 * row exactly where the id is 0 from an embedding; never aborts on input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/prompt.h"
#include "tokenizer/tokenizer.h"

static float vec[70 * 8];
static int32_t ids_cat[1] = {2368};          /* cat</w> */
static int32_t ids_red_dog[2] = {736, 1929}; /* red</w> dog</w> */

static void check(const sdc_prompt_chunks *c, int mode) {
    if (c->n < 1 || c->n > SDC_PROMPT_MAX_CHUNKS) __builtin_trap();
    for (int k = 0; k < c->n; k++) {
        const int32_t *id = c->ids + k * SDC_TOK_CTX;
        if (id[0] != SDC_TOK_BOS) __builtin_trap();
        for (int i = 0; i < SDC_TOK_CTX; i++) {
            if (!sdc_token_str(id[i])) __builtin_trap();
            const float *r = c->rows[k * SDC_TOK_CTX + i];
            if (r && (id[i] != 0 || r < vec || r >= vec + sizeof vec / sizeof *vec)) __builtin_trap();
            if (mode == SDC_PROMPT_TRUNCATE && c->weights[k * SDC_TOK_CTX + i] != 1.0) __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    sdc_embedding emb[2] = {{"cat", ids_cat, 1, 3, 8, vec}, {"red dog", ids_red_dog, 2, 70, 8, vec}};
    sdc_embd_db db = {emb, 2};
    sdc_err e;
    e.msg[0] = 0;
    char *rest = NULL;
    sdc_prompt_lora *l = NULL;
    int nl = 0;
    if (sdc_prompt_take_loras(s, &rest, &l, &nl, &e) == 0) {
        for (int i = 0; i < nl; i++)
            if (!l[i].name || !l[i].name[0]) __builtin_trap();
        sdc_prompt_run *r = NULL;
        size_t n = 0;
        if (sdc_prompt_parse(rest, &r, &n, &e) == 0) {
            if (n < 1) __builtin_trap();
            sdc_prompt_runs_free(r, n);
        }
        for (int mode = 0; mode < 2; mode++) {
            sdc_prompt_chunks c;
            if (sdc_prompt_chunk(rest, mode, mode ? 0 : SDC_TOK_EOS, &db, &c, &e) == 0) check(&c, mode);
            sdc_prompt_chunks_free(&c);
        }
        free(rest);
        sdc_prompt_loras_free(l, nl);
    }
    free(s);
    return 0;
}

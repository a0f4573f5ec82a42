/* tokenizer.h — CLIP's byte-level BPE (49408 tokens, vocabulary embedded in the binary),
 * behaving as transformers' CLIPTokenizer (slow, with ftfy) does for Stable Diffusion. */
#ifndef SDC_TOKENIZER_H
#define SDC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/err.h"

#define SDC_TOK_BOS 49406
#define SDC_TOK_EOS 49407
#define SDC_TOK_VOCAB 49408
#define SDC_TOK_CTX 77            /* ids per window incl. BOS and EOS */

/* BPE ids of text, without BOS/EOS, untruncated. *ids is malloc'd (caller frees), *n its count.
 * Invalid UTF-8 is handled as the reference does or rejected with a clear error.
 * Returns 0 or -1 with e set. */
int sdc_tokenize(const char *text, int32_t **ids, size_t *n, sdc_err *e);

/* The token's string in the vocabulary ("cat</w>"), or NULL when id is out of range. */
const char *sdc_token_str(int32_t id);

/* Wraps ids[0..n) as one 77-id window: BOS, first 75 ids, EOS, padding with pad_id
 * (49407 for SD 1.x, 0 for SD 2.x). Returns 1 if ids were truncated, else 0. */
int sdc_tokens_window(int32_t out[SDC_TOK_CTX], const int32_t *ids, size_t n, int32_t pad_id);

#endif

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
 * Returns 0 or -1 with e set. (This implementation: each invalid UTF-8 byte reads as U+FFFD;
 * refused: prompts over 64 KiB, and text whose ftfy clean-up still changes after 64 passes,
 * i.e. HTML entities nested 63 deep. Not reproduced: ftfy's mojibake repair (fix_encoding).
 * The tables are built on first use, thread-safely, in ~15 ms.) */
int sdc_tokenize(const char *text, int32_t **ids, size_t *n, sdc_err *e);

/* The token's string in the vocabulary ("cat</w>"), or NULL when id is out of range. */
const char *sdc_token_str(int32_t id);

/* Wraps ids[0..n) as one 77-id window: BOS, first 75 ids, EOS, padding with pad_id
 * (49407 for SD 1.x, 0 for SD 2.x). Returns 1 if ids were truncated, else 0. */
int sdc_tokens_window(int32_t out[SDC_TOK_CTX], const int32_t *ids, size_t n, int32_t pad_id);

/* --- added by the tokenizer module (additive) --- */

/* Bytes of text that are not part of valid UTF-8; sdc_tokenize reads each as U+FFFD (what
 * the reference computes for such bytes arriving through Python's surrogateescape argv
 * decoding and ftfy.fix_surrogates). 0 for NULL. Lets a caller warn. */
size_t sdc_tok_utf8_invalid(const char *text);

/* AUTOMATIC1111's comma_padding_backtrack default: a window that fills up moves the tokens
 * after its last comma to the next window when that comma is at most this many tokens back. */
#define SDC_TOK_COMMA_BACKTRACK 20

/* AUTOMATIC1111-style chunking of ids[0..n) (modules/sd_hijack_clip.py tokenize_line, without
 * emphasis or embeddings): windows of up to 75 ids, each one as sdc_tokens_window makes it
 * (BOS, ids, EOS, pad_id padding — A1111 pads SD 2.x with 0 after the first EOS too). When a
 * window is full and the next id is not ",</w>", and the window's last comma is at most
 * SDC_TOK_COMMA_BACKTRACK ids from its end, the ids after that comma move to the next window.
 * An empty prompt gives one window. *windows is malloc'd (*n_windows * 77 ids; caller frees).
 * Returns 0, or -1 when out of memory. */
int sdc_tokens_chunks(int32_t **windows, int *n_windows, const int32_t *ids, size_t n,
                      int32_t pad_id);

/* What code point c is to Python's `re` in a str pattern (the prompt parser's BREAK rule):
 * SDC_TOK_CH_WORD for \w (a letter or number, or '_'), SDC_TOK_CH_SPACE for \s
 * (str.isspace()), SDC_TOK_CH_DIGIT for \d (a decimal digit), or'ed; 0 for none. */
#define SDC_TOK_CH_WORD  1
#define SDC_TOK_CH_SPACE 2
#define SDC_TOK_CH_DIGIT 4
int sdc_tok_char_class(uint32_t c);

#endif

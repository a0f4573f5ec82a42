/* fuzz_tokenize.c — libFuzzer harness for the tokenizer (tokenizer/tokenizer.c): any bytes as a
 * prompt (cut at the first NUL, as a C string is), then the windows and chunks of the ids.
 * Checks that every id is in the vocabulary; never aborts on input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    int32_t *ids = NULL, *w = NULL;
    size_t n = 0;
    int nw = 0;
    sdc_err e;
    e.msg[0] = 0;
    (void)sdc_tok_utf8_invalid(s);
    if (sdc_tokenize(s, &ids, &n, &e) == 0) {
        for (size_t i = 0; i < n; i++)
            if (!sdc_token_str(ids[i])) __builtin_trap();   /* an id outside the vocabulary */
        int32_t win[SDC_TOK_CTX];
        sdc_tokens_window(win, ids, n, 0);
        if (sdc_tokens_chunks(&w, &nw, ids, n, SDC_TOK_EOS) == 0 && nw < 1) __builtin_trap();
        free(w);
    }
    free(ids);
    free(s);
    return 0;
}

/* fuzz_image.c — libFuzzer harness for the image and inpainting-mask decoders (pipeline/image.c:
 * sdc_decode_image, sdc_decode_mask over stb_image): any bytes give either a w*h RGB / grey buffer
 * whose every byte is read (so ASan checks its size) or one line saying why not. Never aborts on
 * input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/image.h"

static void check(int rc, const uint8_t *px, int w, int h, int ch, const sdc_err *e) {
    if (rc == 0) {
        if (!px || w <= 0 || h <= 0) abort();
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)w * h * ch; i++) sum += px[i];
        volatile unsigned s = sum;
        (void)s;
    } else if (!e->msg[0] || strchr(e->msg, '\n') || px) {
        abort();                      /* a refusal is always one line that says why */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *px = NULL;
    int w = 0, h = 0;
    sdc_err e;
    e.msg[0] = 0;
    int rc = sdc_decode_image(data, size, &px, &w, &h, &e);
    check(rc, px, w, h, 3, &e);
    free(px);
    px = NULL;
    e.msg[0] = 0;
    rc = sdc_decode_mask(data, size, &px, &w, &h, &e);
    check(rc, px, w, h, 1, &e);
    free(px);
    return 0;
}

/* fuzz_genreq.c — libFuzzer harness for what `sdc serve` and `--prompts` do with a request body
 * (cli/genreq.c): the depth check, cJSON, then the request as txt2img, img2img (base64 images
 * and masks decoded), OpenAI and a prompt-file line, and the LoRA tag key. Checks that an accepted
 * request is within the named limits; never aborts on input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/genreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20) || memchr(data, 0, size) || !genreq_json_depth_ok((const char *)data, size, 32)) return 0;
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    if (!o) return 0;
    sdc_gen_params base = sdc_gen_default_params();
    for (int kind = GENREQ_TXT2IMG; kind <= GENREQ_LINE; kind++) {
        genreq r;
        const char *field = NULL;
        sdc_err e;
        e.msg[0] = 0;
        if (genreq_parse(o, (genreq_kind)kind, &base, &r, &field, &e) == 0) {
            if (r.n_images < 1 || r.n_images > GENREQ_MAX_IMAGES || r.gp.steps < 1 || r.gp.steps > 1000 ||
                !(r.gp.cfg_scale >= 0 && r.gp.cfg_scale <= 100) || r.gp.width < 8 || r.gp.height < 8 ||
                r.gp.width > 8192 || r.gp.height > 8192 || !r.gp.prompt || !r.gp.negative_prompt ||
                (r.gp.mask && !r.gp.init_rgb))
                __builtin_trap();
            (void)genreq_apply_defaults(&r, NULL, &e);
            free(genreq_lora_key(r.gp.prompt, &e));
        } else if (!e.msg[0]) {
            __builtin_trap();   /* an error always says why */
        }
        genreq_free(&r);
    }
    cJSON_Delete(o);
    return 0;
}

/* test_serve_codec.c — the pieces `sdc serve` builds its JSON bodies with: base64 (RFC 4648
 * vectors, round trips, hostile input refused), PNG bytes in memory identical to the file the CLI
 * writes (with its parameters chunk) and decoded back to the same pixels, AUTOMATIC1111's sampler
 * names and its infotext. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/a1111.h"
#include "cli/base64.h"
#include "pipeline/image.h"
#include "test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static void base64_vectors(void) {
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *s = sdc_base64_encode((const uint8_t *)in[i], strlen(in[i]));
        CHECK(s && !strcmp(s, want[i]), "encode '%s' gave '%s'", in[i], s ? s : "(null)");
        uint8_t *d; size_t n;
        CHECK(!sdc_base64_decode(want[i], strlen(want[i]), &d, &n) && n == strlen(in[i]) &&
              !memcmp(d, in[i], n), "decode '%s'", want[i]);
        free(d);
        free(s);
    }
    uint8_t buf[300];
    for (int i = 0; i < 300; i++) buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= 300; n += 7) {
        char *s = sdc_base64_encode(buf, n);
        uint8_t *d; size_t m;
        CHECK(s && !sdc_base64_decode(s, strlen(s), &d, &m) && m == n && !memcmp(d, buf, n), "round trip %zu", n);
        free(d);
        free(s);
    }
    const char *bad[] = {"Z", "Zg=a", "Zm9v!", "Zm 9v", "====", "Zg===", "Z===", "\xff\xfe"};
    for (int i = 0; i < 8; i++) {
        uint8_t *d; size_t n;
        CHECK(sdc_base64_decode(bad[i], strlen(bad[i]), &d, &n) == -1 && !d, "bad input %d accepted", i);
    }
    uint8_t *d; size_t n;   /* unpadded input is accepted (clients strip '=') */
    CHECK(!sdc_base64_decode("Zg", 2, &d, &n) && n == 1 && d[0] == 'f', "unpadded");
    free(d);
}

static void png_in_memory(void) {
    int w = 24, h = 16;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 7);
    sdc_err e = {{0}};
    char path[] = "/tmp/sdc-test-codec-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    unlink(path);
    const char *text = "a cat\nNegative prompt: dog\nSteps: 4";
    CHECK(!sdc_write_png(path, rgb, w, h, "parameters", text, &e), "write_png: %s", e.msg);
    size_t fn = 0;
    uint8_t *file = tu_slurp(path, &fn);
    uint8_t *mem = NULL; size_t mn = 0;
    CHECK(!sdc_png_encode(rgb, w, h, "parameters", text, &mem, &mn, &e), "png_encode: %s", e.msg);
    CHECK(file && mem && fn == mn && !memcmp(file, mem, fn), "memory PNG differs from the file (%zu vs %zu bytes)", mn, fn);
    char *back = sdc_png_read_text(path, "parameters");
    CHECK(back && !strcmp(back, text), "parameters chunk read back");
    free(back);
    uint8_t *dec = NULL; int dw = 0, dh = 0;
    CHECK(!sdc_decode_image(mem, mn, &dec, &dw, &dh, &e) && dw == w && dh == h &&
          !memcmp(dec, rgb, (size_t)w * h * 3), "decoded pixels differ: %s", e.msg);
    free(dec);
    CHECK(sdc_decode_image((const uint8_t *)"not an image", 12, &dec, &dw, &dh, &e) == -1 && !dec,
          "garbage decoded");
    CHECK(sdc_decode_image(mem, 40, &dec, &dw, &dh, &e) == -1 && !dec, "truncated PNG decoded");
    /* a JPEG whose Huffman table declares more than 256 codes: stb would write past its table */
    static const uint8_t bad_dht[] = {0xff, 0xff, 0xd8, 0xff, 0xff, 0xc4, 0xa1, 0x45, 0x13, 0x51, 0x45, 0x14, 0x51, 0x4f};
    CHECK(sdc_decode_image(bad_dht, sizeof bad_dht, &dec, &dw, &dh, &e) == -1 && !dec && strstr(e.msg, "malformed JPEG"),
          "a JPEG with an oversized Huffman table: %s", e.msg);
    unlink(path);
    free(file);
    uint8_t *m2 = NULL; size_t m2n;
    CHECK(sdc_png_encode(rgb, 0, 4, NULL, NULL, &m2, &m2n, &e) == -1 && !m2, "zero width encoded");
    free(rgb);
    free(mem);
}

static void names(void) {
    int sched = SDC_SCHEDULER_DISCRETE;
    CHECK(sdc_a1111_sampler_from_name("Euler a", &sched) == SDC_SAMPLER_EULER_A && sched == SDC_SCHEDULER_DISCRETE, "Euler a");
    CHECK(sdc_a1111_sampler_from_name("DPM++ 2M", &sched) == SDC_SAMPLER_DPMPP_2M, "DPM++ 2M");
    CHECK(sdc_a1111_sampler_from_name("DPM++ 2M Karras", &sched) == SDC_SAMPLER_DPMPP_2M && sched == SDC_SCHEDULER_KARRAS, "DPM++ 2M Karras");
    CHECK(sdc_a1111_sampler_from_name("euler_a", NULL) == SDC_SAMPLER_EULER_A, "euler_a");
    CHECK(sdc_a1111_sampler_from_name("PLMS", NULL) == SDC_SAMPLER_PNDM, "PLMS");
    CHECK(sdc_a1111_sampler_from_name("Euler Karras a", NULL) == -1, "nonsense accepted");
    CHECK(sdc_a1111_sampler_from_name("Karras", NULL) == -1, "Karras alone accepted");
    CHECK(sdc_a1111_sampler_from_name("", NULL) == -1, "empty accepted");
    for (int m = SDC_SAMPLER_EULER; m <= SDC_SAMPLER_LCM; m++)
        CHECK(sdc_a1111_sampler_from_name(sdc_a1111_sampler_name(m), NULL) == m, "round trip %d", m);
    CHECK(sdc_a1111_schedule_from_name("Karras") == SDC_SCHEDULER_KARRAS, "Karras");
    CHECK(sdc_a1111_schedule_from_name("automatic") == SDC_SCHEDULER_DISCRETE, "Automatic");
    CHECK(sdc_a1111_schedule_from_name("Exponential") == -1, "unsupported scheduler accepted");
    char name[64];
    sdc_a1111_model_name("/a/b.c/tiny-sd1.safetensors", name, sizeof name);
    CHECK(!strcmp(name, "tiny-sd1"), "model name '%s'", name);
    sdc_a1111_model_name("/a/.hidden", name, sizeof name);
    CHECK(!strcmp(name, ".hidden"), "model name '%s'", name);

    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = "a cat"; gp.negative_prompt = "dog"; gp.steps = 4; gp.seed = 42; gp.width = 64;
    gp.height = 64; gp.cfg_scale = 7; gp.sample_method = SDC_SAMPLER_EULER_A; gp.strength = 0.4f;
    char *t = sdc_a1111_infotext(&gp, "0123456789abcdef", "tiny", 1);
    CHECK(t && !strcmp(t, "a cat\nNegative prompt: dog\nSteps: 4, Sampler: Euler a, Schedule type: Automatic, "
          "CFG scale: 7, Seed: 42, Size: 64x64, Model hash: 0123456789, Model: tiny, Denoising strength: 0.4, Version: sdc"),
          "infotext: %s", t ? t : "(null)");
    free(t);
    char *longp = malloc(20001);   /* no length limit: the Steps line survives a long prompt */
    memset(longp, 'x', 20000); longp[20000] = 0;
    gp.prompt = longp;
    t = sdc_a1111_infotext(&gp, "", "tiny", 0);
    CHECK(t && strstr(t, "Steps: 4") && strstr(t, "Version: sdc"), "long prompt lost its Steps line");
    free(t);
    free(longp);
}

int main(void) {
    base64_vectors();
    png_in_memory();
    names();
    if (!fails) printf("ok test_serve_codec\n");
    return fails ? 1 : 0;
}

/* base64.c — RFC 4648 base64 encode/decode. */
#include "cli/base64.h"

#include <stdlib.h>

static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sdc_base64_encode(const uint8_t *p, size_t n) {
    if (n > (SIZE_MAX / 4 - 4) / 4 * 3) return NULL;
    size_t m = (n + 2) / 3 * 4;
    char *s = malloc(m + 1), *o = s;
    if (!s) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = ALPHA[v >> 18]; *o++ = ALPHA[v >> 12 & 63]; *o++ = ALPHA[v >> 6 & 63]; *o++ = ALPHA[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = ALPHA[v >> 18]; *o++ = ALPHA[v >> 12 & 63]; *o++ = '='; *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = ALPHA[v >> 18]; *o++ = ALPHA[v >> 12 & 63]; *o++ = ALPHA[v >> 6 & 63]; *o++ = '=';
    }
    *o = 0;
    return s;
}

static int value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int sdc_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    size_t pad = 0;
    while (pad < 2 && len > 0 && s[len - 1] == '=') { len--; pad++; }
    if (len % 4 == 1 || (pad && (len + pad) % 4)) return -1;
    uint8_t *b = malloc(len / 4 * 3 + 3), *o = b;
    if (!b) return -1;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value(s[i]);
        if (v < 0) { free(b); return -1; }
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) { bits -= 8; *o++ = (uint8_t)(acc >> bits); }
    }
    *out = b;
    *out_len = (size_t)(o - b);
    return 0;
}

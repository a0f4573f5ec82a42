/* base64.h — RFC 4648 base64 (standard alphabet, '=' padding) for images in JSON bodies. */
#ifndef SDC_CLI_BASE64_H
#define SDC_CLI_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes n bytes as a NUL-terminated malloc'd string (NULL when out of memory). */
char *sdc_base64_encode(const uint8_t *p, size_t n);

/* Decodes s (len bytes; padding optional, no other characters allowed) into a malloc'd buffer
 * *out of *out_len bytes. Returns 0, or -1 on a character outside the alphabet, a misplaced '=',
 * an impossible length, or out of memory (then *out is NULL). */
int sdc_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len);

#endif

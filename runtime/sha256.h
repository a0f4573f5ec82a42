/* sha256.h — SHA-256 (FIPS 180-4), for the model hash AUTOMATIC1111 writes into PNGs
 * ("Model hash": the first 10 hex digits of the file's SHA-256). */
#ifndef SDC_SHA256_H
#define SDC_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_sha256 { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t nbuf; } sdc_sha256;

void sdc_sha256_init(sdc_sha256 *s);
void sdc_sha256_update(sdc_sha256 *s, const void *data, size_t n);
void sdc_sha256_final(sdc_sha256 *s, uint8_t out[32]);
/* Hex digest of a whole file into hex (65 bytes). Returns 0, or -1 if the file cannot be read. */
int  sdc_sha256_file(const char *path, char hex[65]);

#endif

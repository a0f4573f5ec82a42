/* sha256.h — SHA-256 (FIPS 180-4), for the model hash AUTOMATIC1111 writes into PNGs
 * ("Model hash": the first 10 hex digits of the file's SHA-256).
 *
 * Two block functions compute the same digest: one with the x86 SHA extensions (SHA-NI, about
 * 2 GB/s on one core), chosen at run time when the CPU has them, and a portable one for every
 * other CPU. The build needs no extra flags for either. Owns no files and no global state;
 * cli/hashcache.h remembers the digests of model files. */
#ifndef SDC_SHA256_H
#define SDC_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Which block function a hash uses. AUTO: SHA-NI when the CPU has it, else portable. */
typedef enum sdc_sha256_impl { SDC_SHA256_AUTO, SDC_SHA256_PORTABLE, SDC_SHA256_SHANI } sdc_sha256_impl;

typedef struct sdc_sha256 {
    uint32_t h[8];      /* chaining state */
    uint64_t len;       /* bytes fed so far */
    uint8_t buf[64];    /* a partial block */
    size_t nbuf;        /* bytes in buf, 0..63 */
    int shani;          /* 1: the SHA-NI block function, 0: the portable one */
} sdc_sha256;

/* 1 when this CPU (and build) can run the SHA-NI path, else 0. */
int  sdc_sha256_have_shani(void);
/* Starts a hash with the best block function for this CPU. */
void sdc_sha256_init(sdc_sha256 *s);
/* Starts a hash with the block function impl asks for (tests compare the two). Returns 0, or -1
 * (s untouched) when impl is SHANI and this CPU or build has no SHA-NI. */
int  sdc_sha256_init_impl(sdc_sha256 *s, sdc_sha256_impl impl);
/* Feeds n bytes of data; whole blocks are hashed straight from data, without a copy. */
void sdc_sha256_update(sdc_sha256 *s, const void *data, size_t n);
/* Writes the 32-byte digest; s must be initialised again before reuse. */
void sdc_sha256_final(sdc_sha256 *s, uint8_t out[32]);
/* Lower-case hex of a 32-byte digest into hex (65 bytes, NUL-terminated). */
void sdc_sha256_hex(const uint8_t d[32], char hex[65]);
/* Hex digest of everything readable from fd, from its current offset to EOF, into hex (65
 * bytes). Reads in large chunks hashed in place. Returns 0, or -1 (errno set) on a read error. */
int  sdc_sha256_fd(int fd, char hex[65]);
/* Hex digest of a whole file into hex (65 bytes). Returns 0, or -1 if the file cannot be read. */
int  sdc_sha256_file(const char *path, char hex[65]);

#endif

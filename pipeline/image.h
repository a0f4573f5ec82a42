/* image.h — PNG in and out. Output goes through a temp file in the destination folder and a
 * rename, so a failed or interrupted write never leaves a half-written image, and only a regular
 * file is ever replaced (runtime/outpath.h). A text chunk can carry the generation parameters the
 * way AUTOMATIC1111 (PIL's PngInfo.add_text) writes them (key "parameters"): tEXt in Latin-1 when
 * the text fits Latin-1, else iTXt in UTF-8; no length limit. */
#ifndef SDC_IMAGE_H
#define SDC_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/err.h"

/* Writes rgb (w*h*3 bytes) as PNG at path; text_key/text_val (UTF-8) may be NULL. Returns 0 or
 * -1 (also when path exists and is not a regular file: a device, FIFO, folder or link). */
int sdc_write_png(const char *path, const uint8_t *rgb, int w, int h, const char *text_key,
                  const char *text_val, sdc_err *e);

/* Reads an image file (PNG, JPEG, ...) as RGB. *rgb is malloc'd (caller frees). 0 or -1. */
int sdc_read_image(const char *path, uint8_t **rgb, int *w, int *h, sdc_err *e);

/* Reads the text chunk `key` of a PNG file (tEXt as Latin-1, iTXt plain or compressed) into a
 * malloc'd UTF-8 string (NULL if absent or on error). */
char *sdc_png_read_text(const char *path, const char *key);

/* The PNG of sdc_write_png as bytes in memory: *out is malloc'd (caller frees), *out_len its
 * length; the text chunk is the same. Returns 0 or -1. */
int sdc_png_encode(const uint8_t *rgb, int w, int h, const char *text_key, const char *text_val,
                   uint8_t **out, size_t *out_len, sdc_err *e);

/* Decodes an image held in memory (PNG, JPEG, ...) as RGB, like sdc_read_image. 0 or -1. */
int sdc_decode_image(const uint8_t *buf, size_t n, uint8_t **rgb, int *w, int *h, sdc_err *e);

/* Reads an inpainting mask (PNG, JPEG, ...; 8- or 16-bit; grey, grey+alpha, RGB or RGBA) as one
 * grey byte per pixel, the way PIL's convert("L") makes it: grey as is (16-bit: the high byte),
 * colour as (19595·R + 38470·G + 7471·B + 32768) >> 16; alpha is ignored. *grey is malloc'd
 * (caller frees). Returns 0 or -1. */
int sdc_read_mask(const char *path, uint8_t **grey, int *w, int *h, sdc_err *e);
/* The same for a mask held in memory (PNG, JPEG, ... bytes). 0 or -1. */
int sdc_decode_mask(const uint8_t *buf, size_t len, uint8_t **grey, int *w, int *h, sdc_err *e);

#endif

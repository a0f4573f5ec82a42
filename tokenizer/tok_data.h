/* tok_data.h — the tables tokenizer.c reads, generated into tok_data.c by
 * scripts/gen_tokenizer_data.py (vocabulary, merges, Unicode and ftfy data). Internal to
 * tokenizer/: nothing outside this module includes it. Range tables are sorted and
 * non-overlapping; every *_n is a count of uint32 values, not of entries. */
#ifndef SDC_TOK_DATA_H
#define SDC_TOK_DATA_H

#include <stddef.h>
#include <stdint.h>

extern const char sdc_tokd_unicode_version[];
extern const char sdc_tokd_vocab[];              /* 49408 strings, id order, ' ' after each */
extern const size_t sdc_tokd_vocab_size;         /* bytes, incl. the literal's final '\0' */
extern const char sdc_tokd_merge_left_len[];     /* [49408-514]: 35 + bytes of merge r's left part */
extern const uint16_t sdc_tokd_byte_id[256];     /* byte b -> id of its byte-level symbol */

extern const uint32_t sdc_tokd_class[];     extern const size_t sdc_tokd_class_n;     /* lo,hi,cls */
extern const uint32_t sdc_tokd_space[];     extern const size_t sdc_tokd_space_n;     /* cp */
extern const uint32_t sdc_tokd_lower[];     extern const size_t sdc_tokd_lower_n;     /* cp,lower */
extern const uint32_t sdc_tokd_cased[];     extern const size_t sdc_tokd_cased_n;     /* lo,hi */
extern const uint32_t sdc_tokd_ignorable[]; extern const size_t sdc_tokd_ignorable_n; /* lo,hi */
extern const uint32_t sdc_tokd_ccc[];       extern const size_t sdc_tokd_ccc_n;       /* lo,hi,ccc */
extern const uint32_t sdc_tokd_decomp[];    extern const size_t sdc_tokd_decomp_n;    /* cp,n,d[4] */
extern const uint32_t sdc_tokd_comp[];      extern const size_t sdc_tokd_comp_n;      /* a,b,c */
extern const uint32_t sdc_tokd_width[];     extern const size_t sdc_tokd_width_n;     /* cp,a,b */
extern const uint32_t sdc_tokd_lig[];       extern const size_t sdc_tokd_lig_n;       /* cp,n,s[3] */
extern const uint32_t sdc_tokd_c1[];        extern const size_t sdc_tokd_c1_n;        /* [32] */
extern const uint32_t sdc_tokd_control[];   extern const size_t sdc_tokd_control_n;   /* lo,hi */
extern const uint32_t sdc_tokd_charref[];   extern const size_t sdc_tokd_charref_n;   /* num,cp */
extern const uint32_t sdc_tokd_badcp[];     extern const size_t sdc_tokd_badcp_n;     /* lo,hi */
extern const char sdc_tokd_entities[];      /* "name;\0value\0" pairs, sorted by name */
extern const size_t sdc_tokd_entities_n;    /* pairs */

#endif

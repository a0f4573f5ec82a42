/* a1111.h — AUTOMATIC1111's vocabulary shared by `sdc generate` and `sdc serve`: its sampler and
 * scheduler names, and the "parameters" text (infotext) it writes into a PNG and reads back.
 * Owns no state. */
#ifndef SDC_CLI_A1111_H
#define SDC_CLI_A1111_H

#include "sdc.h"

/* AUTOMATIC1111's name of a sample method ("Euler a", "DPM++ 2M", ...); "?" when unknown. */
const char *sdc_a1111_sampler_name(int method);

/* A sampler as AUTOMATIC1111 or sdc spells it ("Euler a", "euler_a", "DPM++ 2M Karras", case
 * ignored) → the method, and *schedule set to Karras when the name carries " Karras" (left as is
 * otherwise). -1 when unknown. */
int sdc_a1111_sampler_from_name(const char *name, int *schedule);

/* A scheduler name ("Automatic", "Karras", "discrete", case ignored) → sdc_schedule; -1 unknown. */
int sdc_a1111_schedule_from_name(const char *name);
const char *sdc_a1111_schedule_name(int schedule);

/* The model's name as AUTOMATIC1111 shows it: the file name without folder and extension. */
void sdc_a1111_model_name(const char *path, char *out, size_t cap);

/* The infotext for one image of gp: prompt, negative prompt, then "Steps: .., Sampler: .., ...".
 * model_hash may be "" (unknown). flags: SDC_A1111_IMG2IMG adds the denoising strength,
 * SDC_A1111_INPAINT_MODEL (a 9-channel inpainting UNet) "Conditional mask weight: 1.0"; a mask in
 * gp adds "Mask blur: 0" (sdc does not blur it). As AUTOMATIC1111's create_infotext: no
 * "Negative prompt:" line when it is empty, values containing , : or a newline quoted
 * (sdc_a1111_quote), the whole text stripped of surrounding whitespace; no length limit.
 * malloc'd; NULL when out of memory. */
enum { SDC_A1111_IMG2IMG = 1, SDC_A1111_INPAINT_MODEL = 2 };

/* A value as AUTOMATIC1111's infotext_utils.quote writes it: as is unless it contains ',', ':'
 * or a newline, then json.dumps(v, ensure_ascii=False) ("..." with \" \\ \n \uXXXX escapes).
 * malloc'd; NULL when out of memory. */
char *sdc_a1111_quote(const char *v);
char *sdc_a1111_infotext(const sdc_gen_params *gp, const char *model_hash, const char *model_name,
                         int flags);

/* params with ", Lora hashes: \"NAME: HASH12, ...\"" put before its Version field, for the LoRAs
 * merged into m (HASH12: AUTOMATIC1111's sha256 of the file after a safetensors header). Takes
 * params (freed); returns it unchanged when m has no LoRA; NULL when out of memory. */
char *sdc_a1111_with_lora_hashes(char *params, const sdc_model *m);

#endif

#!/usr/bin/env bash
# cli_inpaint.sh — `sdc generate -i IMAGE --mask MASK` against diffusers 0.25.1's
# StableDiffusionInpaintPipeline: the three references of tests/data/refs/sd1_inpaint* (an
# inpainting UNet with euler at strength 1 and ddim at strength 0.6, an ordinary UNet with ddim),
# fed the PNGs the pipeline was fed; the output PNG's pixels within 1 of 255 of the reference's
# (images atol 1e-3 before rounding, fixtures README), checked with `sdc compare A.png B.png`.
# The PNG's parameters record the mask as AUTOMATIC1111 does. A mask as RGB, RGBA or 16-bit grey
# gives the same picture. Bad input (no -i, unreadable or wrong-size mask): one line, exit 2,
# nothing written.
set -u
SDC=${1:?usage: cli_inpaint.sh path/to/sdc}
D=tests/data
R=$D/refs
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

# ref, model, sampler, strength, seed, prompt
run_ref() {
  local ref=$1 model=$2 sampler=$3 strength=$4 seed=$5 prompt=$6
  "$SDC" generate -m "$D/$model" -p "$prompt" -n "" -s "$seed" --steps 5 --cfg-scale 7.5 \
    --sampling-method "$sampler" --timestep-spacing leading --prompt-mode truncate --strength "$strength" \
    -i "$R/${ref}_image.png" --mask "$R/${ref}_mask.png" -t 2 -q -o "$T/$ref.png" 2>"$T/err"
  local rc=$?
  check "$ref: exit 0" "[ $rc -eq 0 ]" || sed 's/^/    /' "$T/err"
  "$SDC" compare "$T/$ref.png" "$R/$ref.png" --pixel-tol 1 >"$T/cmp" 2>&1
  rc=$?
  check "$ref: pixels within 1/255 of diffusers' ($(head -1 "$T/cmp"))" "[ $rc -eq 0 ]"
}
run_ref sd1_inpaint9_64x64_euler tiny-sd1-inpaint.safetensors euler 1 3300 "a photo of a cat"
run_ref sd1_inpaint9_64x64_ddim_strength0.6 tiny-sd1-inpaint.safetensors ddim 0.6 3301 "a bowl of fruit on a wooden table"
run_ref sd1_inpaint4_64x64_ddim tiny-sd1.safetensors ddim 1 3302 "a small wooden house in a forest"

P=$T/sd1_inpaint9_64x64_ddim_strength0.6.png
check "parameters: strength, mask weight, mask blur" \
  "grep -a -q 'Denoising strength: 0.6, Conditional mask weight: 1.0, Mask blur: 0' '$P'"
check "an ordinary model records no mask weight" \
  "grep -a -q 'Denoising strength: 1, Mask blur: 0' '$T/sd1_inpaint4_64x64_ddim.png' && ! grep -a -q 'Conditional mask weight' '$T/sd1_inpaint4_64x64_ddim.png'"

# The same mask as RGB, RGBA (alpha ignored) and 16-bit grey (scripts/make_mask_variants.py):
# the same picture, byte for byte.
for v in rgb rgba grey16; do
  "$SDC" generate -m "$D/tiny-sd1.safetensors" -p "a small wooden house in a forest" -n "" -s 3302 --steps 5 \
    --cfg-scale 7.5 --sampling-method ddim --timestep-spacing leading --prompt-mode truncate --strength 1 \
    -i "$R/sd1_inpaint4_64x64_ddim_image.png" --mask "$D/masks/sd1_inpaint4_mask_$v.png" -t 2 -q -o "$T/mask_$v.png"
  check "mask as $v PNG gives the same image" "cmp -s '$T/mask_$v.png' '$T/sd1_inpaint4_64x64_ddim.png'"
done

# An inpainting model without --mask paints everything (an all-white mask).
GEN=(-m "$D/tiny-sd1-inpaint.safetensors" -p "a photo of a cat" -s 5 --steps 2 --sampling-method ddim -t 2 -q)
"$SDC" generate "${GEN[@]}" -o "$T/nomask.png" 2>"$T/err"
check "inpainting model without -i or --mask: exit 0 (all-white mask)" "[ $? -eq 0 ]"
check "its PNG records the mask weight but no mask" \
  "grep -a -q 'Conditional mask weight: 1.0' '$T/nomask.png' && ! grep -a -q 'Mask blur' '$T/nomask.png'"

# Bad input: one line, exit 2, no output file.
bad() {  # name, expected message fragment, args...
  local name=$1 frag=$2; shift 2
  "$SDC" generate "$@" -o "$T/bad.png" -q 2>"$T/e"; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: one line saying '$frag'" "[ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'" || cat "$T/e"
  check "$name: no output written" "[ ! -e '$T/bad.png' ] && [ -z \"\$(ls '$T' | grep tmp)\" ]"
}
IMG=$R/sd1_inpaint4_64x64_ddim_image.png
MASK=$R/sd1_inpaint4_64x64_ddim_mask.png
bad "--mask without -i" "needs -i" -p x --mask "$MASK"
bad "mask missing" "cannot open mask" -p x -i "$IMG" --mask "$T/none.png"
printf 'not an image' >"$T/junk.png"
bad "mask not an image" "not a readable mask" -p x -i "$IMG" --mask "$T/junk.png"
bad "mask whose unknown PNG chunk is named with a newline" "cannot decode mask\|not a readable mask" -p x -i "$IMG" --mask fuzz/corpus/image/unknown_chunk_newline.png
bad "mask a directory" "not a regular file" -p x -i "$IMG" --mask "$T"
bad "mask of another size" "mask is 128x128 but the image" -p x -i "$IMG" --mask "$R/sd1_pipe_128x128_ddim.png"
bad "--mask with a model that cannot load" "cannot open\|No such" -m "$T/nope.safetensors" -p x -i "$IMG" --mask "$MASK"
exit $fail

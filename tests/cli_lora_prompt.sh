#!/usr/bin/env bash
# cli_lora_prompt.sh — LoRA, emphasis and embeddings on the command line: `sdc inspect` says what a
# LoRA file is; `sdc tokenize --json` prints each AUTOMATIC1111 chunk's ids and weights; `sdc
# generate` merges --lora FILE[:W] and <lora:NAME:W> tags (the same image either way, another
# one without), says how it was merged, and writes "Lora hashes" as AUTOMATIC1111 does (the
# addnet hash: SHA-256 of a .safetensors file after its header); --embd-dir words give the pixels
# of the words whose token rows the embedding holds; malformed or foreign LoRAs and
# bad tags give one line, exit 2, and no output. (The pixels against the reference:
# tests/test_pipeline_prompt.c.)
set -u
SDC=${1:?usage: cli_lora_prompt.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
M=tests/data/tiny-sd1-fp16.safetensors
L=tests/data/tiny-sd1-lora.safetensors
GEN=(-m "$M" -n "" --steps 2 -W 64 -H 64 -s 7 -t 2 -q)

# inspect
"$SDC" inspect "$L" >"$T/i" 2>&1
check "inspect names a kohya LoRA, its modules, rank and alpha" "grep -q 'lora: *kohya LoRA, 210 modules (UNet 192, text encoder 18), rank 4, alpha 2' '$T/i'"
check "inspect says which family it fits" "grep -q 'fits: *sd_v1' '$T/i'"
"$SDC" inspect tests/data/tiny-sd1-lora.ckpt --json >"$T/j" 2>&1
check "inspect --json of the .ckpt has the lora object" "grep -q '\"format\":.*\"kohya LoRA\"' '$T/j' && grep -q '\"rank_max\":.*4' '$T/j'"

# tokenize: chunks with weights, tags listed and taken out
"$SDC" tokenize -p "a (red:1.3) cat <lora:x:0.5>" --json >"$T/t"
check "tokenize --json: chunk ids without brackets" "grep -q '\"ids\":\[49406,320,736,2368,49407' '$T/t'"
check "tokenize --json: chunk weights" "grep -q '\"weights\":\[1,1,1.3,1,1,' '$T/t'"
check "tokenize --json: the lora tag" "grep -q '\"loras\":\[{\"name\":\"x\",\"multiplier\":0.5}\]' '$T/t'"

# generate: flag and tag give the same image; without, another
"$SDC" generate "${GEN[@]}" -p "a cat" --lora "$L:0.8" -o "$T/flag.png"
"$SDC" generate "${GEN[@]}" -p "a cat <lora:tiny-sd1-lora:0.8>" --lora-model-dir tests/data -o "$T/tag.png" 2>/dev/null
"$SDC" generate "${GEN[@]}" -p "a cat" -o "$T/none.png"
"$SDC" generate "${GEN[@]}" -p "a cat" --lora "$L:0.4" --lora tests/data/tiny-sd1-lora.ckpt:0.4 -o "$T/two.png"
idat() { local o; o=$(grep -abo IDAT "$1" | head -1 | cut -d: -f1); tail -c +$((o + 1)) "$1" | md5sum; }   # the pixels
check "--lora FILE:0.8 and <lora:NAME:0.8> give the same pixels" "[ -s '$T/flag.png' ] && [ \"\$(idat '$T/flag.png')\" = \"\$(idat '$T/tag.png')\" ]"
check "without the LoRA: other pixels" "[ \"\$(idat '$T/flag.png')\" != \"\$(idat '$T/none.png')\" ]"
hash=$(n=$(od -An -tu8 -N8 "$L" | tr -d ' '); tail -c +$((n + 9)) "$L" | sha256sum | cut -c1-12)
check "PNG: Lora hashes as AUTOMATIC1111 writes them ($hash)" "grep -aq 'Lora hashes: \"tiny-sd1-lora: $hash\"' '$T/flag.png'"
check "PNG: the tag stays in the prompt" "grep -aq 'a cat <lora:tiny-sd1-lora:0.8>' '$T/tag.png'"
check "two LoRAs: both hashed" "grep -aq 'Lora hashes: \"tiny-sd1-lora: $hash, tiny-sd1-lora: ' '$T/two.png'"
check "no LoRA: no Lora hashes" "! grep -aq 'Lora hashes' '$T/none.png'"
"$SDC" generate "${GEN[@]}" -p "a cat" --lora "$L" -o "$T/v.png" -q 2>"$T/verbose"
"$SDC" generate -m "$M" -n "" --steps 1 -W 64 -H 64 -p "a cat" --lora "$L:0.8" -o "$T/v.png" 2>"$T/verbose"
check "generate says what it merged" "grep -q 'LoRA tiny-sd1-lora ($L) merged with multiplier 0.8' '$T/verbose'"
# textual inversion: kittypt.pt holds the token rows of "red cat"
"$SDC" inspect tests/data/embeddings/kittypt.pt >"$T/ie" 2>&1
check "inspect names a textual-inversion embedding" "grep -q 'embedding: *textual inversion (string_to_param.\*): 2 vectors of width 32' '$T/ie'"
"$SDC" generate "${GEN[@]}" -p "a (kittypt:1.2) on a mat" --embd-dir tests/data/embeddings -o "$T/emb.png"
"$SDC" generate "${GEN[@]}" -p "a (red cat:1.2) on a mat" -o "$T/words.png"
check "--embd-dir: the embedding's word gives the pixels of its words" "[ -s '$T/emb.png' ] && [ \"\$(idat '$T/emb.png')\" = \"\$(idat '$T/words.png')\" ]"
long=$(printf 'cat %.0s' $(seq 80))
"$SDC" generate -m "$M" -n "" --steps 1 -W 64 -H 64 -p "$long" --prompt-mode truncate -o "$T/long.png" 2>"$T/warn"
check "truncate mode warns when it cuts the prompt" "grep -q 'longer than 75 tokens' '$T/warn'"

# bad input: one line, exit 2, no output file
bad() {  # name, expected message fragment, args...
  local name=$1 frag=$2; shift 2
  "$SDC" generate "${GEN[@]}" "$@" -o "$T/bad.png" 2>"$T/e"; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: one line saying '$frag'" "[ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'"
  check "$name: no output written" "[ ! -e '$T/bad.png' ]"
}
head -c 100000 "$L" >"$T/trunc.safetensors"
bad "truncated LoRA" "past end of file" -p x --lora "$T/trunc.safetensors"
st() {  # st OUT JSON-HEADER DATA-BYTES: a safetensors file
  local h=$2; while [ $(( ${#h} % 8 )) -ne 0 ]; do h="$h "; done
  printf "\\x$(printf %02x $((${#h} % 256)))\\x$(printf %02x $((${#h} / 256)))\\0\\0\\0\\0\\0\\0%s" "$h" >"$1"
  head -c "$3" /dev/zero >>"$1"
}
st "$T/loha.safetensors" '{"lora_unet_a.hada_w1_a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' 4
bad "LoHa" "LoHa" -p x --lora "$T/loha.safetensors"
Q=lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q
st "$T/rank.safetensors" "{\"$Q.lora_down.weight\":{\"dtype\":\"F32\",\"shape\":[4,32],\"data_offsets\":[0,512]},\"$Q.lora_up.weight\":{\"dtype\":\"F32\",\"shape\":[32,2],\"data_offsets\":[512,768]}}" 768
bad "up/down rank mismatch" "rank 2 but down" -p x --lora "$T/rank.safetensors"
st "$T/shape.safetensors" "{\"$Q.lora_down.weight\":{\"dtype\":\"F32\",\"shape\":[4,40],\"data_offsets\":[0,640]},\"$Q.lora_up.weight\":{\"dtype\":\"F32\",\"shape\":[32,4],\"data_offsets\":[640,1152]}}" 1152
bad "wrong shapes" "does not fit weight" -p x --lora "$T/shape.safetensors"
N=lora_unet_down_blocks_7_attentions_0_proj_in
st "$T/none.safetensors" "{\"$N.lora_down.weight\":{\"dtype\":\"F32\",\"shape\":[4,32],\"data_offsets\":[0,512]},\"$N.lora_up.weight\":{\"dtype\":\"F32\",\"shape\":[32,4],\"data_offsets\":[512,1024]}}" 1024
bad "a module matching no weight" "$N matches no weight" -p x --lora "$T/none.safetensors"
bad "hostile pickle as LoRA" "posix.system" -p x --lora tests/data/hostile/evil-posix-system.ckpt
bad "missing LoRA file" "cannot open" -p x --lora "$T/nope.safetensors"
bad "tag without --lora-model-dir" "no LoRA folder" -p "x <lora:tiny-sd1-lora:1>"
bad "tag naming no file" "no tests/data/nope.safetensors" -p "x <lora:nope:1>" --lora-model-dir tests/data
bad "tag with a folder in its name" "without folders" -p "x <lora:../x:1>" --lora-model-dir tests/data
bad "tag with a bad multiplier" "not a number" -p "x <lora:tiny-sd1-lora:abc>" --lora-model-dir tests/data
bad "hypernetwork tag" "only <lora" -p "x <hypernet:foo:1>"
bad "a weight that is no number" "is not a number" -p "a (cat:1.2.3)"
[ $fail = 0 ] && echo "cli_lora_prompt: all passed"
exit $fail

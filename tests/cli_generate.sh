#!/usr/bin/env bash
# cli_generate.sh — `sdc generate` end to end: the demo model by default, the PNG and its
# A1111 parameters chunk, batch numbering and the grid, bad flags and bad models (exit 2, one line,
# no half-written output).
set -u
SDC=${1:?usage: cli_generate.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

# Demo model by default: one stderr line names it; a PNG with the parameters chunk.
"$SDC" generate -p "a red circle on a blue background" -s 42 --steps 4 -o "$T/a.png" -q 2>"$T/err"; rc=$?
check "generate with the demo model exits 0" "[ $rc -eq 0 ]"
check "writes a PNG" "head -c 8 '$T/a.png' | od -c | grep -q 'P   N   G'"
check "PNG carries A1111 parameters" "grep -a -q 'Steps: 4, Sampler: Euler a' '$T/a.png' && grep -a -q 'Seed: 42, Size: 64x64' '$T/a.png' && grep -a -q 'Model: toy-sd1' '$T/a.png'"
"$SDC" generate -p "a red circle on a blue background" -s 42 --steps 4 -o "$T/b.png" 2>"$T/err2"
check "says it uses the embedded demo model" "grep -q 'embedded demo model toy-sd1' '$T/err2'"
check "same seed, same bytes" "cmp -s '$T/a.png' '$T/b.png'"
"$SDC" generate -p "a red circle on a blue background" -s 43 --steps 4 -o "$T/c.png" -q
check "another seed, another image" "! cmp -s '$T/a.png' '$T/c.png'"

# Batch: seeds S, S+1 into OUT_1.png, OUT_2.png, and a grid.
"$SDC" generate -p "a yellow star on a black background" -s 42 --steps 4 -b 2 -o "$T/batch.png" --grid "$T/grid.png" -q
check "batch writes numbered files" "[ -s '$T/batch_1.png' ] && [ -s '$T/batch_2.png' ] && [ -s '$T/grid.png' ]"
check "batch image 2 has seed 43" "grep -a -q 'Seed: 43' '$T/batch_2.png'"
check "the grid carries the parameters (the first image's, as A1111)" "grep -a -q 'Steps: 4, Sampler: Euler a' '$T/grid.png' && grep -a -q 'Seed: 42,' '$T/grid.png'"
check "no empty 'Negative prompt:' line (A1111 writes none)" "! grep -a -q 'Negative prompt:' '$T/batch_1.png'"

# --low-mem widens f16 weights per layer: the same pixels (a 64x64 image is one VAE tile).
"$SDC" generate -p "a red circle on a blue background" -s 42 --steps 4 --low-mem -o "$T/lm.png" -q
check "--low-mem gives the same image" "cmp -s '$T/a.png' '$T/lm.png'"

# img2img from the first image: size taken from it, strength recorded.
"$SDC" generate -p "a red circle on a blue background" -i "$T/a.png" --strength 0.4 --steps 4 -o "$T/i2i.png" -q
check "img2img writes a PNG with its strength" "grep -a -q 'Denoising strength: 0.4' '$T/i2i.png' && grep -a -q 'Size: 64x64' '$T/i2i.png'"

# Bad input: one line, exit 2, no output file.
bad() {  # name, expected message fragment, args...
  local name=$1 frag=$2; shift 2
  "$SDC" generate "$@" -o "$T/bad.png" -q 2>"$T/e"; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: one line saying '$frag'" "[ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'"
  check "$name: no output written" "[ ! -e '$T/bad.png' ] && [ -z \"\$(ls '$T' | grep tmp)\" ]"
}
bad "missing model" "cannot open\|No such file\|not found" -m "$T/nope.safetensors" -p x
bad "width not multiple of 8" "multiple" -p x -W 65 -H 64
bad "unknown sampler" "unknown" -p x --sampling-method foo
bad "unknown flag" "unknown option" -p x --frobnicate 3
bad "no prompt" "no prompt"
bad "bad seed" "expected an integer" -p x -s abc
bad "a VAE-less/UNet-less file" "no UNet" -m tests/data/refs/sd1_vae.safetensors -p x
bad "a directory as model" "directory\|not a" -m tests -p x
bad "init image missing" "cannot\|not a readable" -p x -i "$T/none.png"
bad "bad strength" "strength" -p x -i "$T/a.png" --strength 1.5
exit $fail

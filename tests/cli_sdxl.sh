#!/usr/bin/env bash
# cli_sdxl.sh — SDXL at the command line: --size-cond / --crop-cond recorded in the PNG (and
# changing the image), refused for a model without size conditioning and for bad values (exit 2,
# one line, no output); `inspect` and `--help` say what SDXL and turbo models want.
set -u
SDC=${1:?usage: cli_sdxl.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
XL=tests/data/tiny-sdxl.safetensors
G=(-p "a photo of a cat" -W 64 -H 64 --steps 2 -s 7 -t 2 -q)

"$SDC" generate -m "$XL" "${G[@]}" -o "$T/a.png"; rc=$?
check "SDXL generate exits 0" "[ $rc -eq 0 ]"
check "PNG records the default size conditioning" "grep -a -q 'Size cond: 64x64, Crop cond: 0,0' '$T/a.png'"
check "PNG records SDXL's default sampler (euler, leading)" "grep -a -q 'Sampler: Euler,.*Timestep spacing: leading' '$T/a.png'"
"$SDC" generate -m "$XL" "${G[@]}" --size-cond 1024,768 --crop-cond 16,32 -o "$T/b.png"
check "PNG records --size-cond/--crop-cond" "grep -a -q 'Size cond: 1024x768, Crop cond: 16,32' '$T/b.png'"
check "the size conditioning changes the image" "! cmp -s '$T/a.png' '$T/b.png'"
"$SDC" generate -m "$XL" "${G[@]}" --size-cond 64,64 --crop-cond 0,0 -o "$T/c.png"
check "explicit default conditioning = the default image" "cmp -s '$T/a.png' '$T/c.png'"

bad() {  # name, expected message fragment, args...
  local name=$1 frag=$2; shift 2
  "$SDC" generate "$@" -o "$T/bad.png" -q 2>"$T/e"; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: one line saying '$frag'" "[ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'"
  check "$name: no output written" "[ ! -e '$T/bad.png' ]"
}
bad "--size-cond on an SD 1.x model" "only SDXL" -m tests/data/tiny-sd1-fp16.safetensors -p x -W 64 -H 64 --steps 1 --size-cond 512,512
bad "--size-cond without a comma" "two integers" -m "$XL" -p x --size-cond 512
bad "--crop-cond negative" "two integers" -m "$XL" -p x --crop-cond -1,0
bad "--size-cond zero" "positive" -m "$XL" -p x --size-cond 0,64

"$SDC" inspect "$XL" > "$T/i.txt"
check "inspect: SDXL family" "grep -q '^family: *SDXL' '$T/i.txt'"
check "inspect: recommended settings" "grep -q 'recommended: 1024x1024, cfg 5, euler, leading spacing' '$T/i.txt'"
check "inspect: VAE scale 0.13025" "grep -q 'vae scale: 0.13025' '$T/i.txt'"
"$SDC" generate --help > "$T/h.txt"
check "--help: size/crop flags" "grep -q -- '--size-cond W,H' '$T/h.txt' && grep -q -- '--crop-cond X,Y' '$T/h.txt'"
check "--help: turbo note" "grep -q 'Turbo models' '$T/h.txt' && grep -q 'trailing' '$T/h.txt'"
exit $fail

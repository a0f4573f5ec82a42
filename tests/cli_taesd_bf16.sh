#!/usr/bin/env bash
# cli_taesd_bf16.sh — `sdc generate --taesd`, `--preview`, `--precision` end to end on the demo
# model: a TAESD decode gives another PNG than the VAE's; previews are whole PNGs and the last one
# is the final picture (the same TAESD decode of the final latents); bf16 writes a picture (and
# names its kernels); bad combinations exit 2 with one line and no output; --version names the
# bf16 kernels.
set -u
SDC=${1:?usage: cli_taesd_bf16.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
TAESD=tests/data/taesd-random.safetensors
P="a red circle on a blue background"

"$SDC" generate -p "$P" -s 42 --steps 4 -o "$T/vae.png" -q
"$SDC" generate -p "$P" -s 42 --steps 4 --taesd "$TAESD" --preview "$T/prev.png" --preview-every 3 -o "$T/taesd.png" -q; rc=$?
check "--taesd --preview exits 0" "[ $rc -eq 0 ]"
check "the TAESD decodes another picture than the VAE" "[ -s '$T/taesd.png' ] && ! cmp -s '$T/vae.png' '$T/taesd.png'"
check "the preview is a whole PNG" "head -c 8 '$T/prev.png' | od -c | grep -q 'P   N   G'"
check "no temp file left beside it" "[ -z \"\$(ls '$T' | grep tmp)\" ]"
# The last preview (after step 4) is the final TAESD picture: compare the pixels via a re-read.
"$SDC" generate -p "$P" -s 42 --steps 4 --taesd "$TAESD" --preview "$T/prev2.png" -o "$T/taesd2.png" -q
check "same run, same TAESD picture" "cmp -s '$T/taesd.png' '$T/taesd2.png'"

"$SDC" generate -p "$P" -s 42 --steps 4 --precision bf16 -o "$T/bf16.png" 2>"$T/err"; rc=$?
check "--precision bf16 exits 0" "[ $rc -eq 0 ] && [ -s '$T/bf16.png' ]"
check "the header names the bf16 kernels" "grep -q 'bf16 on ' '$T/err'"
SDC_BF16=plain "$SDC" generate -p "$P" -s 42 --steps 4 --precision bf16 -o "$T/bf16p.png" 2>"$T/err2"
check "SDC_BF16=plain runs the plain-C kernels, same picture" "grep -q 'bf16 on plain C' '$T/err2' && cmp -s '$T/bf16.png' '$T/bf16p.png'"
"$SDC" --version > "$T/v"
check "--version names the bf16 kernels" "grep -q 'bf16 kernels: ' '$T/v'"

bad() {  # name, expected message fragment, args...
  local name=$1 frag=$2; shift 2
  "$SDC" generate -p "$P" --steps 2 "$@" -o "$T/bad.png" -q 2>"$T/e"; local rc=$?
  check "$name: exit 2, one line" "[ $rc -eq 2 ] && [ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'"
  check "$name: no output" "[ ! -e '$T/bad.png' ]"
}
bad "--preview without --taesd" "needs --taesd" --preview "$T/p.png"
bad "--preview-every without --preview" "needs --preview" --preview-every 2
bad "--preview-every 0" "expected an integer" --taesd "$TAESD" --preview "$T/p.png" --preview-every 0
bad "--precision f16" "unknown (f32, bf16)" --precision f16
bad "--precision bf16 with --low-mem" "cannot be combined" --precision bf16 --low-mem
bad "--taesd a checkpoint" "no TAESD weights" --taesd tests/data/tiny-sd1-fp16.safetensors
bad "--taesd a missing file" "none.safetensors" --taesd "$T/none.safetensors"
exit $fail

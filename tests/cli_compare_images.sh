#!/usr/bin/env bash
# cli_compare_images.sh — `sdc compare -p`: the output level. The same weights from a .ckpt and a
# .safetensors (and from f32 and f16 files: the fixture weights are f16-exact) give bit-identical
# images; a bf16 copy gives a different image, with a finite PSNR; --image writes the side-by-side
# PNG (3 x width), with the comparison described in its "parameters" text chunk.
# Usage: bash tests/cli_compare_images.sh /path/to/sdc   (from the repo root)
set -u
SDC=${1:?usage: cli_compare_images.sh /path/to/sdc}
D=tests/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
# a .ckpt has no metadata: the heads the tensors cannot tell come from the fixture's config
GEN=(-p "a photo of a cat" -n "" --seed 42 --steps 3 -W 128 -H 64 --sampling-method euler_a -t 2
     --config "$D/tiny-sd1.config.json")
W=(--only model. --only first_stage_model. --only cond_stage_model.)

# run NAME EXPECTED_RC ARGS...
run() {
  local name=$1 want=$2; shift 2
  "$SDC" compare "$@" >"$T/$name.out" 2>"$T/$name.err"
  local rc=$?
  [ "$rc" = "$want" ] && return 0
  fail "$name: exit $rc, expected $want"; sed 's/^/    /' "$T/$name.out" "$T/$name.err" | tail -12
  return 1
}
summary() { grep '^summary: ' "$T/$1.out" | sed 's/^summary: //'; }
png_wh() { od -An -t u1 -j 16 -N 8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }

for pair in "tiny-sd1.ckpt tiny-sd1.safetensors" "tiny-sd1-legacy.ckpt tiny-sd1-fp16.safetensors"; do
  set -- $pair
  if run "img_${1%.ckpt}" 0 "$D/$1" "$D/$2" "${GEN[@]}" --image "$T/sbs_$1.png"; then
    s=$(summary "img_${1%.ckpt}")
    [ "$s" = "tensors identical; images bit-identical" ] && ok "$1 vs $2: $s" || fail "$1 vs $2: summary '$s'"
    [ "$(head -c 8 "$T/sbs_$1.png" | od -An -t x1 | tr -d ' ')" = 89504e470d0a1a0a ] &&
      [ "$(png_wh "$T/sbs_$1.png")" = "384 64" ] && ok "side-by-side PNG is 384x64" ||
      fail "side-by-side PNG: $(png_wh "$T/sbs_$1.png" 2>&1)"
    grep -aq "sdc compare: left A = $D/$1, middle B = $D/$2" "$T/sbs_$1.png" && ok "PNG text chunk describes it" ||
      fail "PNG has no parameters text"
    ls "$T" | grep -q '\.tmp' && fail "a temp file was left behind: $(ls "$T")"
  fi
done

# f32 and f16 files of f16-exact weights: the f32 compute sees the same numbers, so the same bits
run img_f32f16 0 "$D/tiny-sd1.safetensors" "$D/tiny-sd1-fp16.safetensors" "${W[@]}" "${GEN[@]}" &&
  case "$(summary img_f32f16)" in "tensors equal values (dtypes differ: "*"); images bit-identical") ok "f32 vs f16: $(summary img_f32f16)" ;;
    *) fail "f32 vs f16: summary '$(summary img_f32f16)'" ;; esac

# a bf16 copy changes the weights, hence the image: reported with max abs pixel diff and PSNR
if "$SDC" convert "$D/tiny-sd1.safetensors" "$T/bf16.safetensors" --dtype bf16 >/dev/null 2>&1; then
  if run img_bf16 1 "$D/tiny-sd1.safetensors" "$T/bf16.safetensors" "${W[@]}" "${GEN[@]}" --json --image "$T/bf16.png"; then
    grep -q '"bit_identical":[[:space:]]*false' "$T/img_bf16.out" &&
      grep -Eq '"max_abs_pixel":[[:space:]]*[1-9]' "$T/img_bf16.out" &&
      grep -Eq '"psnr_db":[[:space:]]*[0-9]' "$T/img_bf16.out" && [ "$(png_wh "$T/bf16.png")" = "384 64" ] &&
      ok "bf16 copy: images differ: $(grep -E '"(max_abs_pixel|psnr_db)"' "$T/img_bf16.out" | tr -d '\t\n')" ||
      fail "bf16 copy: $(grep -A10 '"image"' "$T/img_bf16.out")"
  fi
  run img_bf16_tol 0 "$D/tiny-sd1.safetensors" "$T/bf16.safetensors" "${W[@]}" "${GEN[@]}" --rtol 0.00390625 --pixel-tol 255 &&
    ok "bf16 copy: accepted with --rtol 2^-8 --pixel-tol 255"
else
  fail "sdc convert --dtype bf16 failed"
fi

# bad generation parameters: one line, exit 2
run img_badsize 2 "$D/tiny-sd1.safetensors" "$D/tiny-sd1.safetensors" -p cat -W 63 -H 64 &&
  [ "$(wc -l <"$T/img_badsize.err")" = 1 ] && ok "width 63: $(cat "$T/img_badsize.err")"
run img_badmethod 2 "$D/tiny-sd1.safetensors" "$D/tiny-sd1.safetensors" -p cat --sampling-method nope &&
  [ "$(wc -l <"$T/img_badmethod.err")" = 1 ] && ok "unknown sampler: $(cat "$T/img_badmethod.err")"

if [ "$fails" -ne 0 ]; then echo "cli_compare_images: $fails failure(s)"; exit 1; fi
echo "cli_compare_images: all passed"

#!/usr/bin/env bash
# cli_compare.sh — `sdc compare` at the tensor level, on the fixtures:
#   each ckpt/safetensors pair is identical (exit 0); f32 vs f16 gives equal weight values and
#   different dtypes, and the schedule buffers (not f16-exact) differ by f16 rounding only;
#   a `convert --dtype bf16` copy reports its true (nonzero, < 1% relative) difference;
#   one flipped float in a copy is caught, named, and its difference is exactly 2|x|;
#   bad input: one line, exit 2.
# Usage: bash tests/cli_compare.sh /path/to/sdc   (from the repo root)
set -u
SDC=${1:?usage: cli_compare.sh /path/to/sdc}
D=tests/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# run NAME EXPECTED_RC ARGS...: runs sdc compare, keeps stdout/stderr in $T/NAME.{out,err}
run() {
  local name=$1 want=$2; shift 2
  "$SDC" compare "$@" >"$T/$name.out" 2>"$T/$name.err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    fail "$name: exit $rc, expected $want"; sed 's/^/    /' "$T/$name.out" "$T/$name.err" | head -20
    return 1
  fi
  return 0
}
summary() { grep '^summary: ' "$T/$1.out" | sed 's/^summary: //'; }

W="--only model. --only first_stage_model. --only cond_stage_model."   # the model weights

# --- 1. every ckpt/safetensors pair of the fixtures holds the same tensors, bit for bit
for pair in "tiny-sd1.ckpt tiny-sd1.safetensors" "tiny-sd1-fp16.ckpt tiny-sd1-fp16.safetensors" \
            "tiny-sd1-legacy.ckpt tiny-sd1-fp16.safetensors"; do
  set -- $pair
  name=pair_${1%.ckpt}
  if run "$name" 0 "$D/$1" "$D/$2"; then
    s=$(summary "$name")
    n=$(sed -n 's/^  \([0-9]*\) identical.*/\1/p' "$T/$name.out")
    if [ "$s" = identical ] && [ "$n" = 995 ]; then ok "$1 vs $2: identical, 995 tensors"
    else fail "$1 vs $2: summary '$s', identical tensors '$n' (expected identical, 995)"; fi
  fi
done

# --- 2. f32 vs f16: the weights are f16-exact: equal values, dtypes differ
if run f32f16w 0 "$D/tiny-sd1.safetensors" "$D/tiny-sd1-fp16.safetensors" $W; then
  s=$(summary f32f16w)
  case "$s" in
    "equal values (dtypes differ: 980 tensors F32 in A, F16 in B)") ok "f32 vs f16 weights: $s" ;;
    *) fail "f32 vs f16 weights: summary '$s'" ;;
  esac
fi
# ... and the whole files: only the 13 float schedule buffers / EMA decay (float32 values that are
# not f16-exact) differ, each by at most f16 rounding (half an ulp: relative 2^-11 = 4.88e-4).
if run f32f16 1 "$D/tiny-sd1.safetensors" "$D/tiny-sd1-fp16.safetensors" --all; then
  got=$(sed -n '/^values differ/,/^max abs/p' "$T/f32f16.out" | awk '/^  /{print $1}' | sort | tr '\n' ' ')
  want=$(echo alphas_cumprod alphas_cumprod_prev betas log_one_minus_alphas_cumprod model_ema.decay \
         posterior_log_variance_clipped posterior_mean_coef1 posterior_mean_coef2 posterior_variance \
         sqrt_alphas_cumprod sqrt_one_minus_alphas_cumprod sqrt_recip_alphas_cumprod \
         sqrt_recipm1_alphas_cumprod | tr ' ' '\n' | sort | tr '\n' ' ')
  [ "$got" = "$want" ] && ok "f32 vs f16 whole file: exactly the 13 schedule/EMA buffers differ" \
    || fail "f32 vs f16 whole file: differing tensors '$got'"
  rel=$(sed -n 's/^max abs difference .*, max rel difference \([^ ]*\) .*/\1/p' "$T/f32f16.out")
  awk -v r="$rel" 'BEGIN{exit !(r > 0 && r <= 0.00048829)}' && ok "f16 rounding: max rel $rel <= 2^-11" \
    || fail "f16 rounding: max rel '$rel' not in (0, 2^-11]"
fi
run f32f16tol 0 "$D/tiny-sd1.safetensors" "$D/tiny-sd1-fp16.safetensors" --rtol 0.00048829 &&
  case "$(summary f32f16tol)" in "within tolerance: 13 tensors differ"*) ok "--rtol 2^-11 accepts f16 rounding" ;;
    *) fail "--rtol: summary '$(summary f32f16tol)'" ;; esac

# --- 3. a bf16 copy made by `sdc convert` reports its true difference: > 0 and < 1% relative
if "$SDC" convert "$D/tiny-sd1.safetensors" "$T/bf16.safetensors" --dtype bf16 >"$T/conv.out" 2>&1; then
  if run bf16 1 "$D/tiny-sd1.safetensors" "$T/bf16.safetensors" $W; then
    read -r mabs rel < <(sed -n 's/^max abs difference \([^ ]*\) .*, max rel difference \([^ ]*\) .*/\1 \2/p' "$T/bf16.out")
    # bf16 keeps 8 significant bits (7 stored): round-to-nearest is off by at most 2^-8 = 0.39% relative
    awk -v a="${mabs:-x}" -v r="${rel:-x}" 'BEGIN{exit !(a > 0 && r > 0 && r <= 0.00390625 && r < 0.01)}' &&
      ok "bf16 copy: max abs $mabs, max rel $rel (> 0, <= 2^-8 < 1%)" || fail "bf16 copy: max abs '$mabs' max rel '$rel'"
    case "$(summary bf16)" in "different: "*" tensors differ in value (max abs "*")") ok "bf16 copy: $(summary bf16)" ;;
      *) fail "bf16 copy: summary '$(summary bf16)'" ;; esac
  fi
  run bf16tol 0 "$D/tiny-sd1.safetensors" "$T/bf16.safetensors" $W --rtol 0.00390625 &&
    ok "bf16 copy within --rtol 2^-8"
else
  fail "sdc convert --dtype bf16 failed: $(head -3 "$T/conv.out")"
fi

# --- 4. one float flipped in a copy: caught, named, exactly 2|x|, exit 1
F=$D/tiny-sd1.safetensors
NAME=model.diffusion_model.input_blocks.1.1.proj_in.weight
K=37                                            # the element to flip (shape [32,32,1,1]: [1,5,0,0])
N=$(od -An -t u8 -N8 "$F" | tr -d ' ')
START=$(tail -c +9 "$F" | head -c "$N" | grep -o "\"$NAME\":{[^}]*}" | sed 's/.*"data_offsets":\[\([0-9]*\),.*/\1/')
if [ -z "$START" ]; then
  fail "flip: could not find $NAME in the safetensors header"
else
  OFF=$((8 + N + START + 4 * K))
  cp "$F" "$T/flip.safetensors"
  X=$(od -An -t f4 -j "$OFF" -N4 "$F" | tr -d ' ')
  B3=$(od -An -t u1 -j $((OFF + 3)) -N1 "$F" | tr -d ' ')
  printf "$(printf '\\%03o' $((B3 ^ 128)))" | dd of="$T/flip.safetensors" bs=1 seek=$((OFF + 3)) conv=notrunc 2>/dev/null
  if run flip 1 "$F" "$T/flip.safetensors"; then
    s=$(summary flip)
    want=$(awk -v x="$X" 'BEGIN{printf "%.6g", 2 * (x < 0 ? -x : x)}')
    case "$s" in
      "different: 1 tensor differs in value (max abs $want in $NAME)") ok "flip: $s" ;;
      *) fail "flip: summary '$s' (expected 1 tensor, max abs $want = 2*|$X|, in $NAME)" ;;
    esac
    grep -q "^  $NAME  F32/F32 .* 1 of 1024 elements differ  (at \[1,5,0,0\]" "$T/flip.out" &&
      ok "flip: element [1,5,0,0] named" || fail "flip: element not named: $(grep "$NAME" "$T/flip.out")"
  fi
  run flipjson 1 "$F" "$T/flip.safetensors" --json &&
    grep -q "\"name\":[[:space:]]*\"$NAME\"" "$T/flipjson.out" && grep -q '"same":[[:space:]]*false' "$T/flipjson.out" &&
    ok "flip: --json names it and says same: false" || fail "flip --json"
  run flipsame 0 "$T/flip.safetensors" "$T/flip.safetensors" && [ "$(summary flipsame)" = identical ] &&
    ok "a file against itself: identical"
fi

# --- 5. layouts: the diffusers UNet (tests/data/tiny-sd1-unet-diffusers-fp16.safetensors, renamed by
# scripts/make_diffusers_unet.py with diffusers' own tables) matches the original file's UNet, as a
# file and as the unet/ of a diffusers folder; --no-map sees only different names
DU=$D/tiny-sd1-unet-diffusers-fp16.safetensors
if run diffusers 0 "$D/tiny-sd1-fp16.safetensors" "$DU" --only model.diffusion_model.; then
  grep -q "^B: .*; 684 diffusers names matched under their original-layout names)" "$T/diffusers.out" &&
    grep -q "^  684 identical, 0 equal values" "$T/diffusers.out" && [ "$(summary diffusers)" = identical ] &&
    ok "original vs diffusers UNet: 684 tensors renamed, identical" || fail "diffusers: $(head -5 "$T/diffusers.out")"
fi
mkdir -p "$T/folder/unet" && cp "$DU" "$T/folder/unet/diffusion_pytorch_model.safetensors"
run folder 0 "$T/folder" "$D/tiny-sd1.ckpt" --only model.diffusion_model. &&
  case "$(summary folder)" in "equal values (dtypes differ: 684 tensors F16 in A, F32 in B)") ok "diffusers folder vs f32 ckpt: $(summary folder)" ;;
    *) fail "folder: summary '$(summary folder)'" ;; esac
run nomap 1 "$D/tiny-sd1-fp16.safetensors" "$DU" --no-map &&
  grep -q "^tensors: 0 in both, 995 only in A, 684 only in B" "$T/nomap.out" && ok "--no-map: no common names" ||
  fail "--no-map: $(grep '^tensors' "$T/nomap.out")"
mkdir -p "$T/emptydir"

# --- 6. bad input: one line on stderr, exit 2
head -c 5000 "$D/tiny-sd1.safetensors" >"$T/cut.safetensors"
: >"$T/empty.safetensors"
for c in "missing:$T/nope.safetensors $F" "dir:$T/emptydir $F" "truncated:$F $T/cut.safetensors" \
         "empty:$T/empty.safetensors $F" "onefile:$F" "threefiles:$F $F $F" "badopt:$F $F --bogus" \
         "badtol:$F $F --tol -1" "imagenoprompt:$F $F --image $T/x.png"; do
  name=${c%%:*}; args=${c#*:}
  if run "err_$name" 2 $args; then
    n=$(wc -l <"$T/err_$name.err")
    [ "$n" = 1 ] && [ ! -s "$T/err_$name.out" ] && ok "bad input ($name): exit 2: $(cat "$T/err_$name.err")" ||
      fail "bad input ($name): $n lines on stderr, stdout: $(head -2 "$T/err_$name.out")"
  fi
done

if [ "$fails" -ne 0 ]; then echo "cli_compare: $fails failure(s)"; exit 1; fi
echo "cli_compare: all passed"

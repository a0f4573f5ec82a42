#!/usr/bin/env bash
# cli_progress.sh — `sdc generate`'s progress on stderr: a line when the model starts loading; when
# stderr is not a terminal (a log, a pipe) one line per image with its number in the batch, steps,
# s/step and decode time, and no bar or carriage returns; on a terminal (through script(1), when
# present) a bar per image with its number and ETA, then "decoding the image (VAE)". -q: nothing.
set -u
SDC=${1:?usage: cli_progress.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
GEN=(generate -m tests/data/tiny-sd1-fp16.safetensors -p "a red cat" -s 3 --steps 2 -W 64 -H 64 -b 2 -t 2)

"$SDC" "${GEN[@]}" -o "$T/a.png" 2>"$T/log"; rc=$?
check "not a terminal: exit 0" "[ $rc -eq 0 ]"
check "a line when loading starts, with the file and its size" "grep -q '^sdc: loading tests/data/tiny-sd1-fp16.safetensors (0.01 GB)' '$T/log'"
check "one line per image, numbered in the batch" "[ \$(grep -c '^sdc: image [12]/2: wrote ' '$T/log') -eq 2 ]"
check "each says steps, s/step, decode and total time" "grep -Eq 'image 2/2: wrote $T/a_2.png \(seed 4; 2 steps in [0-9.]+ s, [0-9.]+ s/step; decode [0-9.]+ s; total [0-9.]+ s\)' '$T/log'"
check "no bar, no carriage returns in a log" "! grep -q \$'\\r' '$T/log' && ! grep -q 'ETA' '$T/log'"
sed 's/^/     /' "$T/log"
"$SDC" "${GEN[@]}" -o "$T/q.png" -q 2>"$T/qlog"
check "-q: nothing on stderr" "[ ! -s '$T/qlog' ]"
if command -v script >/dev/null 2>&1; then
  script -qec "$(printf '%q ' "$SDC" "${GEN[@]}" -o "$T/t.png")" /dev/null > "$T/tty" 2>&1 < /dev/null
  check "terminal: a bar per image with its number and ETA" "grep -aq 'image 1/2 \[###' '$T/tty' && grep -aq 'image 2/2 \[###.*2/2 .*ETA 0 s' '$T/tty'"
  check "terminal: says it is decoding" "grep -aq 'image 2/2 decoding the image (VAE)' '$T/tty'"
  check "terminal: the per-image line too" "grep -aq 'sdc: image 2/2: wrote ' '$T/tty'"
else
  echo "skip terminal checks (no script(1))"
fi
exit $fail

#!/usr/bin/env bash
# cli_outputs.sh — what `sdc generate -o`, `--grid` and `sdc convert --force` may replace: only a
# regular file. An existing device node, FIFO, folder or symbolic link at the output path is
# refused before any work (exit 2, one line, the thing left as it was, no temp file); a missing
# or unwritable folder too. Device nodes are made in a temp folder (mknod, when allowed), never
# in /dev.
set -u
SDC=${1:?usage: cli_outputs.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
GEN=(generate -p "a red circle" -s 1 --steps 1 -W 64 -H 64 -q)

mkfifo "$T/fifo"
mkdir "$T/dir"
echo keep > "$T/target.png"
ln -s "$T/target.png" "$T/link.png"
ln -s /nonexistent/x.png "$T/dangling.png"
have_dev=0
if mknod "$T/null" c 1 3 2>/dev/null; then have_dev=1; fi

# refused NAME FRAGMENT ARGS...: exit 2, one line naming FRAGMENT, no temp file left
refused() {
  local name=$1 frag=$2; shift 2
  local t0=$(date +%s%N)
  "$SDC" "$@" 2>"$T/e" >/dev/null; local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: one line saying '$frag'" "[ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'"
  check "$name: no temp file left" "[ -z \"\$(ls -A '$T' '$T/dir' | grep '\.tmp[0-9]\|sdc-convert')\" ]"
  echo "     ($(cat "$T/e"); ${ms} ms)"
}
fifo_ok="[ -p '$T/fifo' ]"
dir_ok="[ -d '$T/dir' ] && [ -z \"\$(ls -A '$T/dir')\" ]"
link_ok="[ -L '$T/link.png' ] && [ \"\$(cat '$T/target.png')\" = keep ]"
dangling_ok="[ -L '$T/dangling.png' ]"
dev_ok="[ -c '$T/null' ]"

# generate -o: checked before the model loads (so these fail fast even with a huge model)
refused "-o FIFO" "FIFO" "${GEN[@]}" -o "$T/fifo"
check "-o FIFO: the FIFO is still there" "$fifo_ok"
refused "-o directory" "directory" "${GEN[@]}" -o "$T/dir"
check "-o directory: still an empty folder" "$dir_ok"
refused "-o symlink" "symbolic link" "${GEN[@]}" -o "$T/link.png"
check "-o symlink: link and target unchanged" "$link_ok"
refused "-o dangling symlink" "symbolic link" "${GEN[@]}" -o "$T/dangling.png"
check "-o dangling symlink: still a link" "$dangling_ok"
refused "-o in a missing folder" "No such file" "${GEN[@]}" -o "$T/nope/x.png"
refused "-o checked before loading the model" "FIFO" "${GEN[@]}" -m "$T/no-such-model.safetensors" -o "$T/fifo"
if [ $have_dev = 1 ]; then
  refused "-o character device" "character device" "${GEN[@]}" -o "$T/null"
  check "-o character device: still a device node" "$dev_ok"
else
  echo "skip -o character device (mknod not permitted here)"
fi
# batch outputs are numbered: OUT_2.png as a FIFO is refused before image 1 is made
mkfifo "$T/batch_2.png"
refused "-b 2 with OUT_2 a FIFO" "FIFO" "${GEN[@]}" -b 2 -o "$T/batch.png"
check "-b 2: image 1 was not written either" "[ ! -e '$T/batch_1.png' ] && [ -p '$T/batch_2.png' ]"
rm -f "$T/batch_2.png"
# --grid
refused "--grid FIFO" "FIFO" "${GEN[@]}" -o "$T/ok.png" --grid "$T/fifo"
check "--grid FIFO: no image written before the refusal" "[ ! -e '$T/ok.png' ]"
refused "--grid directory" "directory" "${GEN[@]}" -o "$T/ok.png" --grid "$T/dir"
refused "--grid in a missing folder" "No such file" "${GEN[@]}" -o "$T/ok.png" --grid "$T/nope/g.png"

# compare --image: the same rule, before the two images are generated
refused "compare --image onto a FIFO" "FIFO" compare tests/data/tiny-sd1-fp16.safetensors tests/data/tiny-sd1-fp16.safetensors \
  -p x --steps 1 -W 64 -H 64 --image "$T/fifo"
check "compare --image FIFO: the FIFO is still there" "$fifo_ok"

# a regular file is replaced, through temp + rename
echo old > "$T/reg.png"
"$SDC" "${GEN[@]}" -o "$T/reg.png" -q; rc=$?
check "-o an existing regular file: replaced by the PNG" "[ $rc -eq 0 ] && head -c 8 '$T/reg.png' | od -c | grep -q 'P   N   G'"

# convert --force: the same rule
M=tests/data/tiny-sd1-fp16.safetensors
refused "convert --force onto a FIFO" "FIFO" convert "$M" "$T/fifo" --force
refused "convert --force onto a directory" "directory" convert "$M" "$T/dir" --force
refused "convert --force onto a symlink" "symbolic link" convert "$M" "$T/link.png" --force
if [ $have_dev = 1 ]; then
  refused "convert --force onto a device node" "character device" convert "$M" "$T/null" --force
fi
refused "convert onto an existing file without --force" "already exists: use --force" convert "$M" "$T/reg.png"
"$SDC" convert "$M" "$T/reg.png" --force 2>/dev/null; rc=$?
check "convert --force replaces a regular file" "[ $rc -eq 0 ] && \"$SDC\" inspect '$T/reg.png' >/dev/null 2>&1"
exit $fail

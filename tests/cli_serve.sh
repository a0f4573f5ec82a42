#!/usr/bin/env bash
# cli_serve.sh — `sdc serve` on loopback ports with the tiny fixture model, driven by curl and by a
# Python client written against AUTOMATIC1111's API (tests/serve_client.py): the CLI's exact PNGs
# for txt2img/img2img/inpainting/batches/OpenAI, 10 concurrent clients, progress and interrupt, a full queue
# (503 + Retry-After) and a client that leaves its queued job, every kind of bad request (the server
# keeps serving), slow clients, basic auth, RSS flat over a request loop; SIGTERM ends it cleanly
# (exit 0: under ASan that also means no leak). Also run by `make test-asan`.
set -u
SDC=${1:?usage: cli_serve.sh path/to/sdc}
T=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
M=tests/data/tiny-sd1.safetensors
PY=tests/serve_client.py
ASAN=0; ldd "$SDC" 2>/dev/null | grep -q libasan && ASAN=1

# start NAME ARGS...: starts a server on a free loopback port; sets URL_<NAME> and PID_<NAME>.
start() {
  local name=$1; shift
  "$SDC" serve -m "$M" --port 0 "$@" 2>"$T/$name.log" &
  local pid=$! url=""
  PIDS+=("$pid")
  for _ in $(seq 600); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/$name.log" | head -1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  eval "URL_$name=$url; PID_$name=$pid"
  check "$name: server starts and says where" "[ -n '$url' ]"
}
# stop NAME: SIGTERM, exit 0 and nothing from the sanitizers.
stop() {
  local pid; eval "pid=\$PID_$1"
  kill -TERM "$pid"; wait "$pid"; local rc=$?
  check "$1: SIGTERM ends the server with exit 0" "[ $rc -eq 0 ]"
  check "$1: no sanitizer report" "! grep -q 'Sanitizer\|runtime error' '$T/$1.log'"
  [ $rc -eq 0 ] || tail -30 "$T/$1.log"
}

# The CLI's images, to compare with.
G=("$SDC" generate -m "$M" -p "a red circle on a blue background" -W 64 -H 64 -q)
"${G[@]}" -s 42 --steps 4 -o "$T/t2i.png"
"${G[@]}" -s 42 --steps 4 --sampling-method dpm++2m --scheduler karras -o "$T/dpm.png"
"${G[@]}" -s 100 --steps 4 -b 10 -o "$T/conc.png"
"${G[@]}" -s 7 --steps 4 -i "$T/t2i.png" --strength 0.4 -o "$T/i2i.png"
"${G[@]}" -s 42 -o "$T/openai.png"
"${G[@]}" -s 9 --steps 4 -i "$T/t2i.png" --mask tests/data/refs/sd1_inpaint4_64x64_ddim_mask.png --strength 0.8 -o "$T/inpaint.png"
"$SDC" generate -m "$M" -p x -W 32 -H 32 --steps 1 -q -o "$T/small.png"
"$SDC" generate -m "$M" -p "a red circle on a blue background <lora:tiny-sd1-lora:0.8>" --lora-model-dir tests/data \
  -W 64 -H 64 -q -s 42 --steps 4 -o "$T/lora.png"
check "CLI references written" "[ -s '$T/t2i.png' ] && [ -s '$T/conc_10.png' ] && [ -s '$T/i2i.png' ] && [ -s '$T/openai.png' ] && [ -s '$T/inpaint.png' ] && [ -s '$T/small.png' ] && [ -s '$T/lora.png' ]"

# Flags checked before anything binds.
"$SDC" serve -m "$M" --host 0.0.0.0 --port 0 2>"$T/e"; rc=$?
check "beyond loopback without --api-auth: refused (exit 2)" "[ $rc -eq 2 ] && grep -q 'api-auth' '$T/e'"
"$SDC" serve -m "$T/none.safetensors" --port 0 2>"$T/e"; rc=$?
check "a missing model: exit 2, one line" "[ $rc -eq 2 ] && [ \$(wc -l < '$T/e') -eq 1 ]"
"$SDC" serve --port 0 2>"$T/e"; rc=$?
check "no model: exit 2" "[ $rc -eq 2 ]"

# The main server.
start A --max-queue 16 --max-body 200000 --timeout 2 --lora-model-dir tests/data
U=$URL_A
check "curl: GET sd-models" "curl -sf '$U/sdapi/v1/sd-models' | grep -q '\"model_name\":\"tiny-sd1\"'"
curl -sf -X POST "$U/sdapi/v1/txt2img" -H 'Content-Type: application/json' \
  -d '{"prompt":"a red circle on a blue background","seed":42,"steps":4,"width":64,"height":64}' > "$T/curl.json"
python3 -c "import json,base64,sys; open(sys.argv[2],'wb').write(base64.b64decode(json.load(open(sys.argv[1]))['images'][0]))" "$T/curl.json" "$T/curl.png"
check "curl: txt2img gives the CLI's PNG byte for byte" "cmp -s '$T/t2i.png' '$T/curl.png'"
code=$(curl -s -o "$T/b" -w '%{http_code}' -X POST "$U/sdapi/v1/txt2img" -d '{"prompt":"x","steps":"many"}')
check "curl: wrong type → 422 {\"detail\": ...}" "[ $code = 422 ] && grep -q '\"detail\"' '$T/b'"
python3 "$PY" lists "$U" || fail=1
python3 "$PY" parity "$U" "$T" || fail=1
python3 "$PY" concurrent "$U" "$T" 10 || fail=1
python3 "$PY" progress "$U" || fail=1
python3 "$PY" bad "$U" 200000 "$T" || fail=1
python3 "$PY" slow "$U" 2 || fail=1
python3 "$PY" lora "$U" "$T" || fail=1
if [ $ASAN = 0 ]; then python3 "$PY" rss "$U" "$PID_A" 20 || fail=1; fi
stop A

# A one-place queue: 503 when full, a client that leaves its queued job.
start B --max-queue 1
python3 "$PY" queue "$URL_B" || fail=1
stop B

# Basic auth.
start C --api-auth "ann:s3cret pass"
python3 "$PY" auth "$URL_C" ann "s3cret pass" || fail=1
stop C
exit $fail

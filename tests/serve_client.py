#!/usr/bin/env python3
"""serve_client.py — drives `sdc serve` as AUTOMATIC1111's API clients do (Python stdlib only:
urllib, http.client, socket, threads). Written against AUTOMATIC1111's documented shapes:
POST /sdapi/v1/txt2img|img2img {prompt, negative_prompt, seed, steps, cfg_scale, width, height,
sampler_name, batch_size, n_iter, init_images, denoising_strength, override_settings} →
{"images": [base64 PNG], "parameters": {...}, "info": "<json>"}; GET /sdapi/v1/progress →
{progress, eta_relative, state{...}, current_image}; POST /sdapi/v1/interrupt.

usage: serve_client.py MODE URL [args]   (modes below; prints ok/FAIL lines, exit 1 on a failure)
"""
import base64
import http.client
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

FAILS = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  " + str(detail)[:300]))
    if not cond:
        FAILS.append(name)


def call(url, path, body=None, method=None, timeout=120, headers=None, raw=None):
    """(status, parsed JSON or None, headers)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method or ("POST" if data is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None), dict(r.headers)
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            j = json.loads(text)
        except ValueError:
            j = None
        return e.code, j, dict(e.headers)


def png_of(resp, i=0):
    return base64.b64decode(resp["images"][i])


def base_req(seed, steps=4, **kw):
    r = {"prompt": "a red circle on a blue background", "negative_prompt": "", "seed": seed,
         "steps": steps, "cfg_scale": 7, "width": 64, "height": 64, "sampler_name": "Euler a"}
    r.update(kw)
    return r


def read(path):
    with open(path, "rb") as f:
        return f.read()


def parity(url, ref_dir):
    """txt2img/img2img/batch/OpenAI give the CLI's exact PNG bytes (same parameters chunk)."""
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(42))
    check("txt2img 200", st == 200, r)
    if st != 200:
        return
    check("txt2img: the CLI's PNG, byte for byte", png_of(r) == read(ref_dir + "/t2i.png"))
    info = json.loads(r["info"])
    check("info is AUTOMATIC1111's JSON string", info["seed"] == 42 and info["all_seeds"] == [42]
          and info["sampler_name"] == "Euler a" and info["width"] == 64 and "Steps: 4" in info["infotexts"][0], info)
    check("parameters echo the request", r["parameters"]["steps"] == 4 and r["parameters"]["prompt"].startswith("a red"))
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(42, sampler_name="DPM++ 2M", scheduler="Karras"))
    check("DPM++ 2M Karras: the CLI's image", st == 200 and png_of(r) == read(ref_dir + "/dpm.png"), st)
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(42, sampler_name="DPM++ 2M Karras"))
    check("'DPM++ 2M Karras' as one sampler name (older clients)", st == 200 and png_of(r) == read(ref_dir + "/dpm.png"), st)
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(100, batch_size=2, n_iter=2))
    ok = st == 200 and len(r["images"]) == 4 and json.loads(r["info"])["all_seeds"] == [100, 101, 102, 103]
    check("batch_size x n_iter: 4 images, seeds S..S+3", ok, st)
    if ok:
        check("batch images: the CLI's -b images", all(png_of(r, i) == read(ref_dir + "/conc_%d.png" % (i + 1)) for i in range(4)))
    init = base64.b64encode(read(ref_dir + "/t2i.png")).decode()
    st, r, _ = call(url, "/sdapi/v1/img2img", base_req(7, init_images=[init], denoising_strength=0.4))
    check("img2img 200", st == 200, r)
    if st == 200:
        check("img2img: the CLI's -i PNG, byte for byte", png_of(r) == read(ref_dir + "/i2i.png"))
    st, r, _ = call(url, "/sdapi/v1/img2img", base_req(7, init_images=["data:image/png;base64," + init], denoising_strength=0.4))
    check("img2img takes a data: URL", st == 200 and png_of(r) == read(ref_dir + "/i2i.png"), st)
    mask = base64.b64encode(read("tests/data/refs/sd1_inpaint4_64x64_ddim_mask.png")).decode()
    st, r, _ = call(url, "/sdapi/v1/img2img", base_req(9, init_images=[init], mask=mask, denoising_strength=0.8, mask_blur=4))
    check("img2img with a mask (inpainting): the CLI's --mask PNG", st == 200 and png_of(r) == read(ref_dir + "/inpaint.png"), (st, r if st != 200 else ""))
    st, r, _ = call(url, "/v1/images/generations", {"prompt": "a red circle on a blue background", "size": "64x64",
                                                    "n": 1, "response_format": "b64_json", "seed": 42, "model": "dall-e-2"})
    ok = st == 200 and "created" in r and len(r["data"]) == 1
    check("OpenAI images/generations: b64_json", ok, r)
    if ok:   # OpenAI's request has no steps/sampler: the model's/CLI defaults (20 steps, Euler a)
        check("OpenAI image is the CLI's default-steps image", base64.b64decode(r["data"][0]["b64_json"]) == read(ref_dir + "/openai.png"))


def lora(url, ref_dir):
    """<lora:NAME:W> tags load from --lora-model-dir: the CLI's image; without tags the plain model again."""
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(42, prompt="a red circle on a blue background <lora:tiny-sd1-lora:0.8>"))
    check("a <lora:...> tag: the CLI's PNG (Lora hashes included)", st == 200 and png_of(r) == read(ref_dir + "/lora.png"), (st, r if st != 200 else ""))
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(42))
    check("then without the tag: the plain model's image", st == 200 and png_of(r) == read(ref_dir + "/t2i.png"), st)
    for name in ("../tiny-sd1-lora", "nope", "/etc/passwd"):
        st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(1, prompt="x <lora:%s:1>" % name))
        check("a LoRA tag naming %s → 422" % name, st == 422 and "detail" in r, (st, r))
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(42, steps=1))
    check("the server still serves", st == 200, st)
    st, l, _ = call(url, "/sdapi/v1/loras")
    check("loras lists --lora-model-dir", st == 200 and "tiny-sd1-lora" in [x["name"] for x in l], l)


def lists(url):
    st, m, _ = call(url, "/sdapi/v1/sd-models")
    check("sd-models lists the model", st == 200 and m[0]["model_name"] == "tiny-sd1" and m[0]["title"].startswith("tiny-sd1.safetensors"), m)
    st, s, _ = call(url, "/sdapi/v1/samplers")
    names = [x["name"] for x in s] if st == 200 else []
    check("samplers as AUTOMATIC1111 spells them", "Euler a" in names and "DPM++ 2M" in names and "DDIM" in names, names)
    st, s, _ = call(url, "/sdapi/v1/schedulers")
    check("schedulers", st == 200 and [x["label"] for x in s] == ["Automatic", "Karras"], s)
    st, o, _ = call(url, "/sdapi/v1/options")
    check("options: sd_model_checkpoint", st == 200 and o["sd_model_checkpoint"].startswith("tiny-sd1"), o)
    st, o, _ = call(url, "/sdapi/v1/options", {"sd_model_checkpoint": m[0]["title"], "CLIP_stop_at_last_layers": 1})
    check("POST options with a known model", st == 200, o)
    st, o, _ = call(url, "/sdapi/v1/loras")
    check("loras: a list", st == 200 and isinstance(o, list), o)
    st, o, _ = call(url, "/sdapi/v1/progress")
    check("progress when idle", st == 200 and o["progress"] == 0 and o["state"]["job_count"] == 0, o)


def concurrent(url, ref_dir, n):
    """n clients at once, seeds 100.., each gets its own image (the CLI's -b batch)."""
    out = [None] * n

    def one(i):
        try:
            out[i] = call(url, "/sdapi/v1/txt2img", base_req(100 + i), timeout=600)
        except Exception as e:  # noqa: BLE001 (reported below)
            out[i] = (0, str(e), None)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    good = sum(1 for i in range(n) if out[i][0] == 200 and png_of(out[i][1]) == read(ref_dir + "/conc_%d.png" % (i + 1)))
    check("%d concurrent clients each get their own correct image" % n, good == n, [o[0] for o in out])


def progress_interrupt(url):
    res = {}

    def long_job():
        res["r"] = call(url, "/sdapi/v1/txt2img", base_req(5, steps=1000), timeout=600)
        res["t"] = time.time()
    t = threading.Thread(target=long_job)
    t.start()
    seen = None
    for _ in range(600):
        st, p, _ = call(url, "/sdapi/v1/progress")
        if p["state"]["sampling_step"] >= 2:
            seen = p
            break
        time.sleep(0.05)
    check("progress reports the running job", seen is not None and 0 < seen["progress"] < 1
          and seen["state"]["sampling_steps"] == 1000 and seen["state"]["job_count"] == 1 and seen["eta_relative"] > 0, seen)
    t_int = time.time()
    st, _, _ = call(url, "/sdapi/v1/interrupt", {})
    check("interrupt 200", st == 200, st)
    t.join(120)
    r = res.get("r")
    check("interrupted request returns at once", r is not None and res["t"] - t_int < 10, r and r[0])
    if r:
        info = json.loads(r[1]["info"]) if r[0] == 200 else {}
        check("interrupted: 200, no image, info says interrupted", r[0] == 200 and r[1]["images"] == [] and info.get("interrupted") is True, r[:2])
    st, p, _ = call(url, "/sdapi/v1/progress")
    check("progress idle again", p["state"]["job_count"] == 0 and p["progress"] == 0, p)
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(42, steps=1))
    check("the next request runs normally", st == 200 and len(r["images"]) == 1, st)


def bad_requests(url, max_body, ref_dir):
    def expect(name, status, path, body=None, raw=None, method=None, key="detail"):
        st, r, _ = call(url, path, body, raw=raw, method=method)
        check("%s → %d" % (name, status), st == status and isinstance(r, dict) and key in r, (st, r))
    T = "/sdapi/v1/txt2img"
    expect("body over --max-body", 413, T, raw=b'{"prompt": "' + b"x" * (max_body + 10) + b'"}')
    expect("JSON nested 100 deep", 422, T, raw=b"[" * 100 + b"]" * 100)
    expect("JSON nested 100000 deep", 422, T, raw=b'{"a":' * 2000 + b"1" + b"}" * 2000)
    expect("not JSON", 422, T, raw=b"{prompt: cat")
    expect("empty body", 422, T, raw=b"")
    expect("a JSON array, not an object", 422, T, raw=b"[1,2]")
    expect("NUL inside the body", 422, T, raw=b'{"prompt":"a\x00"}')
    expect("steps as a string", 422, T, base_req(1, steps="20"))
    expect("prompt as a number", 422, T, {"prompt": 5})
    expect("width not an integer", 422, T, base_req(1, width=64.5))
    expect("steps 0", 422, T, base_req(1, steps=0))
    expect("steps 1001", 422, T, base_req(1, steps=1001))
    expect("steps 1e300", 422, T, base_req(1, steps=1e300))
    expect("cfg_scale 1e9", 422, T, base_req(1, cfg_scale=1e9))
    expect("seed -2", 422, T, base_req(-2))
    expect("seed 2^64", 422, T, base_req(2 ** 64))
    expect("width 65 (not a multiple of 8)", 422, T, base_req(1, width=65))
    expect("width 100000", 422, T, base_req(1, width=100000))
    expect("8192x8192 (too many pixels)", 422, T, base_req(1, width=8192, height=8192))
    expect("batch_size 1000", 422, T, base_req(1, batch_size=1000))
    expect("enable_hr (not supported)", 422, T, base_req(1, enable_hr=True))
    expect("unknown sampler", 422, T, base_req(1, sampler_name="Euler z"))
    expect("unknown scheduler", 422, T, base_req(1, scheduler="Exponential"))
    expect("unknown model", 422, T, base_req(1, override_settings={"sd_model_checkpoint": "nope"}))
    expect("a path as model name", 422, T, base_req(1, override_settings={"sd_model_checkpoint": "../../../etc/passwd"}))
    expect("a model path that exists", 422, T, base_req(1, override_settings={"sd_model_checkpoint": "tests/data/tiny-sd1.safetensors"}))
    I = "/sdapi/v1/img2img"
    expect("img2img without init_images", 422, I, base_req(1))
    expect("img2img: init not base64", 422, I, base_req(1, init_images=["!!!"]))
    expect("img2img: init not an image", 422, I, base_req(1, init_images=[base64.b64encode(b"hello world").decode()]))
    ok_init = base64.b64encode(read(ref_dir + "/t2i.png")).decode()
    small = base64.b64encode(read(ref_dir + "/small.png")).decode()
    expect("img2img: mask not an image", 422, I, base_req(1, init_images=[ok_init], mask="aGVsbG8="))
    expect("img2img: mask of another size", 422, I, base_req(1, init_images=[ok_init], mask=small))
    expect("img2img: mask as a number", 422, I, base_req(1, init_images=[ok_init], mask=3))
    expect("img2img: init image of another size than width/height", 422, I, base_req(1, init_images=[small]))
    expect("img2img: denoising_strength 2", 422, I, base_req(1, init_images=["aGVsbG8="], denoising_strength=2))
    expect("POST options: unknown model", 422, "/sdapi/v1/options", {"sd_model_checkpoint": "/etc/passwd"})
    expect("unknown endpoint", 404, "/sdapi/v1/nope")
    expect("GET on txt2img", 405, T, method="GET")
    expect("DELETE on progress", 405, "/sdapi/v1/progress", method="DELETE")
    O = "/v1/images/generations"
    expect("OpenAI: no prompt", 400, O, {"n": 1}, key="error")
    expect("OpenAI: response_format url", 400, O, {"prompt": "x", "response_format": "url"}, key="error")
    expect("OpenAI: size 64", 400, O, {"prompt": "x", "size": "64"}, key="error")
    expect("OpenAI: n 100", 400, O, {"prompt": "x", "n": 100}, key="error")
    # a chunked body over the limit (no Content-Length to refuse up front)
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    def chunks():
        for _ in range(max_body // 4096 + 4):
            yield b"x" * 4096
    try:
        c.request("POST", T, body=chunks(), headers={"Content-Type": "application/json"}, encode_chunked=True)
        st = c.getresponse().status
    except (ConnectionError, OSError):
        st = "closed"
    check("chunked body over --max-body → 413 (or closed)", st in (413, "closed"), st)
    c.close()
    st, r, _ = call(url, T, base_req(42, steps=1))
    check("after all that the server still serves", st == 200 and len(r["images"]) == 1, st)


def slow_client(url, timeout_s):
    host, port = url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    s.settimeout(timeout_s + 10)
    t0 = time.time()
    try:
        data = s.recv(4096)
    except socket.timeout:
        data = None
    check("a client that stops sending is dropped after --timeout", data is not None and time.time() - t0 < timeout_s + 8, data)
    s.close()


def queue_full(url):
    """--max-queue 1: one running, one queued, the third gets 503 + Retry-After; a queued client that
    leaves loses its job."""
    res = {}

    def job(k, steps):
        res[k] = call(url, "/sdapi/v1/txt2img", base_req(5, steps=steps), timeout=600)
    t1 = threading.Thread(target=job, args=("a", 1000))
    t1.start()
    for _ in range(600):
        if call(url, "/sdapi/v1/progress")[1]["state"]["sampling_step"] >= 1:
            break
        time.sleep(0.05)
    host, port = url.split("//")[1].split(":")
    body = json.dumps(base_req(6, steps=1)).encode()
    s = socket.create_connection((host, int(port)))   # the queued client that will leave
    s.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    for _ in range(100):
        if call(url, "/sdapi/v1/progress")[1]["state"]["queued"] == 1:
            break
        time.sleep(0.05)
    st, r, h = call(url, "/sdapi/v1/txt2img", base_req(7, steps=1))
    check("full queue → 503 with Retry-After", st == 503 and int(h.get("Retry-After", "0")) >= 1 and "detail" in r, (st, r, h))
    s.close()   # leaves while queued
    gone = False
    for _ in range(100):
        if call(url, "/sdapi/v1/progress")[1]["state"]["queued"] == 0:
            gone = True
            break
        time.sleep(0.05)
    check("a queued client that disconnects loses its job", gone)
    call(url, "/sdapi/v1/interrupt", {})
    t1.join(120)
    check("the running job ended (interrupted)", res.get("a", (0,))[0] == 200)
    st, r, _ = call(url, "/sdapi/v1/txt2img", base_req(7, steps=1))
    check("then the queue takes requests again", st == 200, st)


def auth(url, user, pw):
    st, r, h = call(url, "/sdapi/v1/sd-models")
    check("no credentials → 401", st == 401 and "WWW-Authenticate" in h, (st, h))
    bad = base64.b64encode(b"%s:wrong" % user.encode()).decode()
    st, r, h = call(url, "/sdapi/v1/sd-models", headers={"Authorization": "Basic " + bad})
    check("wrong password → 401", st == 401, st)
    good = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
    st, r, h = call(url, "/sdapi/v1/sd-models", headers={"Authorization": "Basic " + good})
    check("right credentials → 200", st == 200, st)


def rss_loop(url, pid, seconds):
    """Requests in a loop: the server's RSS after warm-up stays flat."""
    def rss():
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0
    for i in range(20):
        call(url, "/sdapi/v1/txt2img", base_req(i, steps=1))
    r0 = rss()
    t_end = time.time() + seconds
    n = 0
    bad = 0
    while time.time() < t_end:
        st, _, _ = call(url, "/sdapi/v1/txt2img", base_req(n, steps=1, batch_size=2))
        bad += st != 200
        call(url, "/sdapi/v1/txt2img", base_req(n, steps="x"))          # errors too
        call(url, "/sdapi/v1/progress")
        n += 1
    r1 = rss()
    print("rss: %d KiB after warm-up, %d KiB after %d more requests in %ds" % (r0, r1, 3 * n, seconds))
    check("all loop requests succeeded", bad == 0, bad)
    check("RSS flat over the loop (grew %d KiB)" % (r1 - r0), r1 - r0 < 4096, (r0, r1))


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    a = sys.argv[3:]
    {"parity": lambda: parity(url, a[0]), "lists": lambda: lists(url),
     "concurrent": lambda: concurrent(url, a[0], int(a[1])), "progress": lambda: progress_interrupt(url),
     "bad": lambda: bad_requests(url, int(a[0]), a[1]), "slow": lambda: slow_client(url, int(a[0])),
     "queue": lambda: queue_full(url), "lora": lambda: lora(url, a[0]), "auth": lambda: auth(url, a[0], a[1]),
     "rss": lambda: rss_loop(url, int(a[0]), int(a[1]))}[mode]()
    sys.exit(1 if FAILS else 0)

#!/usr/bin/env python
"""Serving throughput on this machine, in one run:
1. the limit: onnxruntime in-process, decoding and preprocessing included, batches of 32;
2. captcha-serve (LitServe + onnxruntime, dynamic batching) under wrk at 1, 8 and 32 connections;
3. the baseline a user would otherwise write (benchmarks/baseline_server.py: FastAPI + PyTorch, no batching).
Requests are POST /predict with JSON {"image": base64 PNG} of a real-size character crop. Prints a table,
then one JSON line.

    .venv/bin/python benchmarks/serve_bench.py MODEL_DIR [--seconds 10] [--model model.onnx] [--workers 1]
"""
import argparse
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from captcha_nb.core import load_image
from captcha_nb.export import OnnxReader
from captcha_nb.testing import free_port, start_server, stop_server

HERE = Path(__file__).parent


def sample_png(model_dir) -> bytes:
    a = np.load(Path(model_dir)/'samples.npz')['calib_x'][0]
    b = io.BytesIO(); Image.fromarray(a).save(b, 'PNG'); return b.getvalue()


def in_process(model_path, png: bytes, seconds: float, bs: int = 32) -> float:
    "Images/s of decode + preprocess + onnxruntime + answers, in this process"
    r = OnnxReader(model_path)
    batch = [png] * bs
    r.answers(r.logits(np.stack([r.preprocess(load_image(b)) for b in batch])))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        r.answers(r.logits(np.stack([r.preprocess(load_image(b)) for b in batch]))); n += bs
    return n / (time.perf_counter() - t0)


def wrk_lua(body: str, extra: str = '') -> str:
    "A wrk script that POSTs `body` as JSON, then `extra` Lua"
    return f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body}]]\n{extra}'


def parse_wrk(out: str) -> dict:
    "requests/s, p50, p99 (ms) and errors from the output of wrk --latency"
    ms = lambda s: float(s[:-2]) if s.endswith('ms') else float(s[:-2]) / 1000 if s.endswith('us') else float(s[:-1]) * 1000
    lat = dict(re.findall(r'^\s+(50|99)%\s+(\S+)\s*$', out, re.M))
    if '99' not in lat or 'Requests/sec' not in out: raise RuntimeError(f'cannot read wrk output:\n{out}')
    errors = sum(int(x) for x in re.findall(r'Non-2xx or 3xx responses: (\d+)', out))
    errors += sum(int(x) for x in re.findall(r'(?:connect|read|write|timeout) (\d+)', out))
    return dict(req_s=float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1)), p50_ms=ms(lat['50']), p99_ms=ms(lat['99']),
                errors=errors)


def wrk(url: str, body: bytes, conns: int, seconds: float) -> dict:
    "requests/s, p50, p99 (ms) and errors from wrk with one thread"
    with tempfile.NamedTemporaryFile('w', suffix='.lua', delete=False) as f: f.write(wrk_lua(body.decode()))
    out = subprocess.run(['wrk', '-t1', f'-c{conns}', f'-d{int(seconds)}s', '--latency', '-s', f.name, url],
                         capture_output=True, text=True).stdout
    os.unlink(f.name)
    return parse_wrk(out)


def baseline(model_dir, port: int):
    p = subprocess.Popen([sys.executable, str(HERE/'baseline_server.py'), str(model_dir), str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import urllib.request
    for _ in range(120):
        try: urllib.request.urlopen(f'http://127.0.0.1:{port}/docs', timeout=1); return p
        except OSError: time.sleep(0.5)
    raise RuntimeError('baseline server did not start')


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('model_dir')
    ap.add_argument('--seconds', type=int, default=10)
    ap.add_argument('--model', default='model.onnx')
    ap.add_argument('--workers', type=int, default=1)
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--conns', default='1,8,32')
    a = ap.parse_args()
    if not shutil.which('wrk'): sys.exit('needs wrk: apt-get install wrk')
    model_dir, png = Path(a.model_dir), sample_png(a.model_dir)
    body = json.dumps({'image': base64.b64encode(png).decode()}).encode()
    conns = [int(c) for c in a.conns.split(',')]
    res = dict(model=a.model, cpus=os.cpu_count(), workers=a.workers)
    res['in_process_img_s'] = round(in_process(model_dir/a.model, png, a.seconds), 1)
    log = Path(tempfile.mkdtemp())/'p.jsonl'
    args = ['--prediction-log', log, '--workers', a.workers, '--log-level', 'warning'] + (['--threads', a.threads] if a.threads else [])
    proc, url = start_server([model_dir/a.model], args=args)
    try:
        wrk(url + '/predict', body, 8, 2)  # warm-up
        res['litserve'] = {c: wrk(url + '/predict', body, c, a.seconds) for c in conns}
    finally: stop_server(proc)
    port = free_port(); bp = baseline(model_dir, port)
    try:
        wrk(f'http://127.0.0.1:{port}/predict', body, 8, 2)
        res['baseline'] = {c: wrk(f'http://127.0.0.1:{port}/predict', body, c, a.seconds) for c in conns}
    finally: os.killpg(bp.pid, 15); bp.wait()
    top = max(conns)
    res['ratio_to_limit'] = round(res['litserve'][top]['req_s'] / res['in_process_img_s'], 3)
    res['speedup_vs_baseline'] = round(res['litserve'][top]['req_s'] / res['baseline'][top]['req_s'], 2)
    print(f"in-process limit (decode + preprocess + onnxruntime, batch 32): {res['in_process_img_s']} img/s")
    print(f"{'server':10} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name in ('litserve', 'baseline'):
        for c, r in res[name].items(): print(f"{name:10} {c:>7} {r['req_s']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['errors']:>7}")
    print(f"at {top} clients: {res['ratio_to_limit']:.2f} of the in-process limit, {res['speedup_vs_baseline']:.1f}x the baseline")
    print(json.dumps(res))

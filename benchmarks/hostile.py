#!/usr/bin/env python
"""The hardening figures, each from a bounded loopback reproduction against a fresh captcha-serve:

1. `/health` and `/predict` (a normal crop) latency while 8 clients keep sending the worst images the server
   still accepts (a 2000x2000 16-bit PNG, a 2000x2000 progressive JPEG with 64 scans) and ones it refuses
   (a 6324x6324 PNG, a JPEG with 1000 scans);
2. `/metrics` size and the server's resident memory before and after 1000 requests with random 60 KB paths;
3. `/drift.json?last=100` time on a 50 MB prediction log (first call and repeated);
4. each child process killed in turn: what happened and how fast.

Prints a table per part and one JSON line.

    .venv/bin/python benchmarks/hostile.py [--seconds 10]
"""
import argparse
import io
import json
import random
import string
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import requests
from PIL import Image

from captcha_nb.core import CHAR_SIZE, FEATURES, MAX_JPEG_SCANS
from captcha_nb.testing import free_port, jpeg_scans, start_server, stop_server, tiny_onnx


def encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO(); im.save(b, fmt, **kw); return b.getvalue()


def hostile_images() -> dict:
    return {'png16_2000': encoded(Image.new('I;16', (2000, 2000)), 'PNG'),
            f'jpeg_{MAX_JPEG_SCANS}scans_2000': jpeg_scans(2000, MAX_JPEG_SCANS),
            'png16_6324 (refused)': encoded(Image.new('I;16', (6324, 6324)), 'PNG'),
            'jpeg_1000scans (refused)': jpeg_scans(256, 1000)}


def pct(xs, q): return round(float(np.percentile(xs, q)) * 1000, 1) if xs else None


def under_attack(url: str, seconds: float) -> dict:
    "Latency of /health and of /predict with a normal crop while 8 clients send hostile images"
    images, stop, statuses = list(hostile_images().items()), threading.Event(), {}
    def attacker(k):
        s = requests.Session()
        while not stop.is_set():
            name, data = images[k % len(images)]; k += 1
            r = s.post(url + '/predict', files={'file': ('x', data)}, timeout=60)
            statuses.setdefault(name, set()).add(r.status_code)
    crop = encoded(Image.new('L', CHAR_SIZE, 255), 'PNG')
    health, predict = [], []
    with ThreadPoolExecutor(8) as ex:
        for k in range(8): ex.submit(attacker, k)
        time.sleep(1)
        s, t_end = requests.Session(), time.time() + seconds
        while time.time() < t_end:
            t = time.perf_counter(); s.get(url + '/health', timeout=30); health.append(time.perf_counter() - t)
            t = time.perf_counter(); s.post(url + '/predict', files={'file': ('x.png', crop)}, timeout=30); predict.append(time.perf_counter() - t)
        stop.set()
    return dict(health_p50_ms=pct(health, 50), health_p99_ms=pct(health, 99), predict_p50_ms=pct(predict, 50),
                predict_p99_ms=pct(predict, 99), n=len(health), statuses={k: sorted(v) for k, v in statuses.items()})


def rss_mb(pid) -> float:
    p = psutil.Process(pid)
    return round(sum(q.memory_info().rss for q in [p] + p.children(recursive=True)) / 2**20, 1)


def junk_paths(url: str, pid: int, n: int = 1000) -> dict:
    s = requests.Session()
    for _ in range(20): s.get(url + '/' + ''.join(random.choices(string.ascii_letters, k=200)))
    s.get(url + '/metrics'); m0, r0 = len(s.get(url + '/metrics').content), rss_mb(pid)
    for _ in range(n): s.get(url + '/' + ''.join(random.choices(string.ascii_letters, k=60_000)))
    m1, r1 = len(s.get(url + '/metrics').content), rss_mb(pid)
    return dict(metrics_bytes=(m0, m1), metrics_growth_pct=round((m1 / m0 - 1) * 100, 2), rss_mb=(r0, r1),
                rss_growth_pct=round((r1 / r0 - 1) * 100, 2))


def big_log(path: Path, mb: int = 50):
    rng = np.random.default_rng(0)
    rows = [json.dumps(dict(ts=1.0, endpoint='/predict', model='model.onnx', label=str(rng.choice(list('abc'))), confidence=0.9,
                            **{k: float(rng.normal(1, 0.1)) for k in FEATURES})).encode() + b'\n' for _ in range(2000)]
    block = b''.join(rows)
    with open(path, 'wb') as f:
        for _ in range(mb * 2**20 // len(block) + 1): f.write(block)


def drift_on_big_log(model: Path, tmp: Path) -> dict:
    rng = np.random.default_rng(1)
    pd.DataFrame([dict(label=str(rng.choice(list('abc'))), confidence=0.9, **{k: float(rng.normal(1, 0.1)) for k in FEATURES})
                  for _ in range(500)]).to_csv(model.parent/'reference.csv', index=False)
    log = tmp/'big.jsonl'; big_log(log)
    proc, url = start_server([model], args=['--prediction-log', log])
    try:
        requests.get(url + '/drift.json', params={'last': 50}, timeout=120).raise_for_status()  # loads Evidently (once per server)
        times = []
        for _ in range(3):  # a new question (not cached), then the same again (cached)
            t = time.perf_counter(); r = requests.get(url + '/drift.json', params={'last': 100}, timeout=120); times.append(time.perf_counter() - t)
            r.raise_for_status()
        with ThreadPoolExecutor(16) as ex:
            pages = list(ex.map(lambda _: requests.get(url + '/drift', params={'last': 100}, timeout=120), range(32)))
        return dict(log_mb=round(log.stat().st_size / 2**20, 1), first_ms=round(times[0] * 1000), repeated_ms=round(times[-1] * 1000),
                    concurrent_pages=len(pages), empty_pages=sum(len(p.content) < 1000 for p in pages),
                    statuses=sorted({p.status_code for p in pages}))
    finally: stop_server(proc)


def kill_each_child(model: Path) -> list:
    res = []
    proc, _ = start_server([model]); n = len(psutil.Process(proc.pid).children()); stop_server(proc)
    crop = encoded(Image.new('L', CHAR_SIZE, 255), 'PNG')
    for k in range(n):
        proc, url = start_server([model], port=free_port())
        try:
            kids = sorted(psutil.Process(proc.pid).children(), key=lambda p: p.pid)
            forks = [c for c in kids if 'captcha-serve' in ' '.join(c.cmdline())]  # started in this order: manager, then HTTP
            child = kids[k]
            role = ('queue manager' if child == forks[0] else 'HTTP server (uvicorn)') if child in forks else \
                   'inference worker' if 'spawn' in ' '.join(child.cmdline()) else 'resource tracker'
            child.kill(); t0, outcome = time.time(), 'hung'
            while time.time() - t0 < 30:
                if proc.poll() is not None: outcome = f'exited {proc.returncode}'; break
                try:
                    if requests.post(url + '/predict', files={'file': ('x.png', crop)}, timeout=3).status_code == 200: outcome = 'answers'; break
                except requests.RequestException: time.sleep(0.3)
            res.append(dict(child=role, outcome=outcome, seconds=round(time.time() - t0, 1)))
        finally: stop_server(proc)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seconds', type=float, default=10, help='length of the latency measurement under attack')
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix='hostile-'))
    model = tiny_onnx(tmp/'model'/'model.onnx', 'char')
    proc, url = start_server([model], args=['--prediction-log', tmp/'p.jsonl'])
    try:
        attack = under_attack(url, a.seconds)
        print(f"under attack (8 clients, hostile images): /health p50 {attack['health_p50_ms']} ms, p99 {attack['health_p99_ms']} ms; "
              f"/predict crop p50 {attack['predict_p50_ms']} ms, p99 {attack['predict_p99_ms']} ms; answers {attack['statuses']}", flush=True)
        junk = junk_paths(url, proc.pid)
        print(f"1000 junk 60 KB paths: /metrics {junk['metrics_bytes'][0]:,} -> {junk['metrics_bytes'][1]:,} bytes "
              f"({junk['metrics_growth_pct']:+.2f} %), memory {junk['rss_mb'][0]} -> {junk['rss_mb'][1]} MB ({junk['rss_growth_pct']:+.2f} %)", flush=True)
    finally: stop_server(proc)
    drift = drift_on_big_log(model, tmp)
    print(f"/drift.json?last=100 on a {drift['log_mb']} MB log: {drift['first_ms']} ms (Evidently loaded, not cached), {drift['repeated_ms']} ms repeated; "
          f"{drift['concurrent_pages']} concurrent /drift: {drift['empty_pages']} empty, statuses {drift['statuses']}", flush=True)
    kills = kill_each_child(model)
    for k in kills: print(f"kill -9 {k['child']}: {k['outcome']} after {k['seconds']} s", flush=True)
    print(json.dumps(dict(cpu=__import__('platform').processor() or 'cpu', attack=attack, junk_paths=junk, drift=drift, kills=kills)))


if __name__ == '__main__':
    sys.exit(main())

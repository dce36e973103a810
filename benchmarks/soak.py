#!/usr/bin/env python
"""A bounded soak: N requests (default 10 000) at C concurrent clients (default 32) with wrk on loopback against
captcha-serve, then: errors (must be 0), requests/s, p50/p99, resident memory of every server process at the
start and the end (must stay flat), and prediction-log rows written (must equal the requests the server answered, from its /metrics).
Prints a table and one JSON line.

    .venv/bin/python benchmarks/soak.py MODEL_DIR [--requests 10000] [--clients 32] [--model model.onnx]
"""
import argparse
import base64
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

from captcha_nb.predlog import PredictionLog
from captcha_nb.testing import start_server, stop_server

sys.path.insert(0, str(Path(__file__).parent))
from serve_bench import parse_wrk, sample_png, wrk_lua  # noqa: E402


def rss_mb(pid) -> dict:
    procs = [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True)
    return {f'{p.pid}': round(p.memory_info().rss / 2**20, 1) for p in procs if p.is_running()}


def counter(metrics_text: str, name: str, **labels) -> float:
    "Total of the Prometheus counter `name` over the samples whose labels include `labels`"
    return sum(s.value for f in text_string_to_metric_families(metrics_text) for s in f.samples
               if s.name == f'{name}_total' and labels.items() <= s.labels.items())


def run_wrk(url, body, n, clients) -> str:
    "wrk until `n` responses: its Lua script stops the thread and marks a file, then SIGINT makes wrk print its summary"
    # (wrk's main thread sleeps for the whole -d duration even when every thread has stopped)
    with tempfile.TemporaryDirectory() as d:
        done_mark, script = Path(d)/'done', Path(d)/'soak.lua'
        script.write_text(wrk_lua(body, 'local count = 0\nresponse = function(status, headers, body)\n  count = count + 1\n'
                                        f'  if count == {n} then io.open("{done_mark}", "w"):close(); wrk.thread:stop() end\nend\n'))
        p = subprocess.Popen(['wrk', '-t1', f'-c{clients}', '-d600s', '--latency', '-s', str(script), url],
                             stdout=subprocess.PIPE, text=True)
        while p.poll() is None and not done_mark.exists(): time.sleep(0.2)
        if p.poll() is None: p.send_signal(signal.SIGINT)
        return p.communicate(timeout=60)[0]


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('model_dir')
    ap.add_argument('--requests', type=int, default=10_000)
    ap.add_argument('--clients', type=int, default=32)
    ap.add_argument('--model', default='model.onnx')
    a = ap.parse_args()
    body = json.dumps({'image': base64.b64encode(sample_png(a.model_dir)).decode()})
    log = Path(tempfile.mkdtemp())/'p.jsonl'
    proc, url = start_server([Path(a.model_dir)/a.model], args=['--prediction-log', log, '--log-level', 'warning'])
    try:
        run_wrk(url + '/predict', body, 200, 8)  # warm-up
        start = rss_mb(proc.pid)
        out = run_wrk(url + '/predict', body, a.requests, a.clients)
        end = rss_mb(proc.pid)
        metrics = requests.get(url + '/metrics', timeout=10).text
    finally: stop_server(proc)
    # what the server answered (wrk stops counting at N while a few requests are still in flight)
    answered = counter(metrics, 'captcha_requests', path='/predict', status='200')
    done = int(re.search(r'(\d+) requests in', out).group(1))
    load = parse_wrk(out)
    rows = len(PredictionLog(log).read()[0])
    log_errors = int(counter(metrics, 'captcha_prediction_log_errors'))
    res = dict(requests=done, clients=a.clients, **load, logged_rows=rows, answered=int(answered), log_errors=log_errors,
               rss_start_mb=start, rss_end_mb=end,
               rss_growth_mb=round(sum(end.get(k, 0) for k in start) - sum(start.values()), 1))
    print(f"{done} requests at {a.clients} clients: {res['errors']} errors, {res['req_s']} req/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms")
    print(f"RSS per process start {start} MB, end {end} MB (total growth {res['rss_growth_mb']} MB); "
          f"prediction log {rows} rows for {int(answered)} answered requests, {log_errors} failed log writes")
    print(json.dumps(res))

"""Hardening, round 2: each finding of the black-box attack as a bounded, loopback-only regression test.

Speed figures (/health latency under hostile images, /drift.json time on a 50 MB log) are printed by
`benchmarks/hostile.py`, not asserted here."""
import base64
import io
import json
import random
import string
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from captcha_nb.core import CHAR_SIZE, FEATURES
from captcha_nb.data import synth_items
from captcha_nb.testing import jpeg_scans, server_log, start_server, stop_server, tiny_onnx


def png(size=CHAR_SIZE) -> bytes:
    b = io.BytesIO(); Image.new('L', size, 255).save(b, 'PNG'); return b.getvalue()


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    "A server on an untrained tiny model, with an API key"
    d = tmp_path_factory.mktemp('hardening')
    proc, url = start_server([tiny_onnx(d/'model.onnx', 'char')], args=['--prediction-log', d/'p.jsonl', '--api-key', 'k3y'])
    yield proc, url
    stop_server(proc)


KEY = {'x-api-key': 'k3y'}


@pytest.fixture(scope='module')
def crops(): return [Image.fromarray(a) for a, _ in synth_items(30, seed=11, progress=False)]


def junk_path(n: int) -> str: return '/' + ''.join(random.choices(string.ascii_letters, k=n))


def test_metrics_stay_bounded_whatever_the_paths(server):
    "Error counters are labelled by route, never by the raw path: junk paths (401, 404, 413) add no series"
    _, url = server
    for _ in range(3):  # every series these requests can touch, once (401, 404, 413, /metrics itself)
        requests.get(url + junk_path(100)); requests.get(url + junk_path(100), headers=KEY)
        requests.post(url + junk_path(100), data=b'x' * (11 * 2**20), headers=KEY); requests.get(url + '/metrics', headers=KEY)
    before = len(requests.get(url + '/metrics', headers=KEY).content)
    for i in range(60):
        requests.get(url + junk_path(6000)) if i % 3 else requests.post(url + junk_path(6000), data=b'x' * (11 * 2**20), headers=KEY)
        requests.get(url + junk_path(6000), headers=KEY)
    after = requests.get(url + '/metrics', headers=KEY).content
    assert len(after) < before * 1.01 + 200, f'/metrics grew from {before} to {len(after)} bytes'


def test_access_log_lines_cannot_be_forged(server):
    proc, url = server
    requests.get(url + '/%0A2099-01-01 INFO forged%1B[31m' + 'x' * 5000)
    log = server_log(proc, wait_for='forged')
    assert 'forged' in log and '\n2099-01-01 INFO forged' not in log and '\x1b' not in log
    line = next(line for line in log.splitlines() if 'forged' in line)
    assert '\\n2099' in line and '\\x1b' in line and len(line) < 600, line[:300]


@pytest.mark.parametrize('path', ['/predict', '/preview'])
def test_deeply_nested_json_is_a_400_not_a_500(server, path):
    _, url = server
    r = requests.post(url + path, data=b'[' * 100_000, headers={**KEY, 'content-type': 'application/json'})
    assert r.status_code == 400 and r.json()['error'] == 'bad_json', r.text[:200]


def test_head_probes_of_the_page_and_health(server):
    _, url = server
    for path in ('/', '/health'):
        r = requests.head(url + path)
        assert r.status_code == 200 and r.content == b'', (path, r.status_code)


def test_api_key_with_trailing_space_and_base64_variants(server):
    _, url = server
    im = png()
    for enc in (base64.urlsafe_b64encode(im).decode().rstrip('='), base64.encodebytes(im).decode()):
        r = requests.post(url + '/predict', json={'image': enc}, headers={'x-api-key': 'k3y  '})
        assert r.status_code == 200, r.text[:200]
    assert requests.post(url + '/predict', json={'image': base64.b64encode(im).decode()}, headers={'x-api-key': 'k3'}).status_code == 401


def test_eps_is_not_an_image_format_we_take(server):
    _, url = server
    eps = b'%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto stroke\n'
    r = requests.post(url + '/predict', files={'file': ('x.eps', eps)}, headers=KEY)
    assert r.status_code == 415 and 'Ghostscript' not in r.text and 'PNG, JPEG' in r.json()['detail']


def test_huge_pixel_counts_are_refused_from_the_header(server):
    "A 16-bit 6324x6324 PNG (90 KB) is refused before decoding"
    _, url = server
    b = io.BytesIO(); Image.new('I;16', (6324, 6324)).save(b, 'PNG')
    r = requests.post(url + '/predict', files={'file': ('big.png', b.getvalue())}, headers=KEY)
    assert r.status_code == 413 and 'pixels' in r.json()['detail']


def test_jpeg_scan_bombs_are_refused_before_decoding(server):
    _, url = server
    r = requests.post(url + '/predict', files={'file': ('scans.jpg', jpeg_scans())}, headers=KEY)
    assert r.status_code == 413 and 'scans' in r.json()['detail']
    ok = io.BytesIO(); Image.new('L', CHAR_SIZE, 200).save(ok, 'JPEG', progressive=True)
    assert requests.post(url + '/predict', files={'file': ('ok.jpg', ok.getvalue())}, headers=KEY).status_code == 200


def test_drift_bad_last_is_422_and_concurrent_pages_are_whole(tiny_char_model, tmp_path, crops):
    log = tmp_path/'p.jsonl'
    proc, url = start_server([tiny_char_model/'model.onnx'], args=['--prediction-log', log])
    try:
        for im in crops[:30]:
            b = io.BytesIO(); im.save(b, 'PNG')
            requests.post(f'{url}/predict', files={'file': ('x.png', b.getvalue())}).raise_for_status()
        for last in (-1, 0):
            r = requests.get(f'{url}/drift.json', params={'last': last})
            assert r.status_code == 422 and r.json()['error'] == 'bad_last'
        with ThreadPoolExecutor(16) as ex:
            pages = list(ex.map(lambda _: requests.get(f'{url}/drift', params={'last': 25}), range(32)))
        assert all(p.status_code == 200 and len(p.content) > 10_000 for p in pages), [(p.status_code, len(p.content)) for p in pages]
        assert not list(tmp_path.glob('drift*.html')), 'the server renders each page in memory'
    finally: stop_server(proc)


def test_drift_reads_only_the_end_of_a_big_log(tmp_path):
    "current_frame(last=N) reads N rows from the end: rows before them may even be unreadable"
    from captcha_nb.monitor import current_frame
    row = dict(endpoint='/predict', label='a', confidence=0.9, **{k: 1.0 for k in FEATURES})
    log = tmp_path/'p.jsonl'
    log.write_bytes(b'garbage\n' * 200_000 + b''.join(json.dumps(dict(row, i=i)).encode() + b'\n' for i in range(150)))
    df = current_frame(log, last=100)
    assert len(df) == 100 and list(df['i'])[:2] == [50, 51] and df['i'].iloc[-1] == 149


def test_killing_any_child_process_never_leaves_a_hung_server(tmp_path):
    "kill -9 of each child (queue manager, inference worker, HTTP server): within 20 s it answers again or has exited non-zero"
    import socket
    import time

    import psutil
    model = tiny_onnx(tmp_path/'m.onnx', 'char')
    proc, _ = start_server([model]); n = len(psutil.Process(proc.pid).children()); stop_server(proc)
    assert n >= 2, 'expected an HTTP process and an inference worker'
    for k in range(n):
        port = __import__('captcha_nb.testing', fromlist=['free_port']).free_port()
        proc, url = start_server([model], port=port)
        try:
            child = sorted(psutil.Process(proc.pid).children(), key=lambda p: p.pid)[k]
            what = f'child {k} of {n} ({" ".join(child.cmdline())[:60]})'
            child.kill()
            outcome, t0 = None, time.time()
            while outcome is None and time.time() - t0 < 20:
                if proc.poll() is not None: outcome = 'exited'; break
                try:
                    r = requests.post(url + '/predict', files={'file': ('x.png', png())}, timeout=3)
                    if r.status_code == 200 and requests.get(url + '/health', timeout=3).status_code == 200: outcome = 'answers'
                except requests.RequestException: time.sleep(0.5)
            assert outcome, f'{what}: neither answering nor exited after 20 s'
            print(what, outcome, f'{time.time() - t0:.1f} s')
            if outcome == 'exited':
                assert proc.returncode != 0, f'{what}: exited 0 after a crash'
                with socket.socket() as s:  # nobody listens on the port any more (connections in TIME_WAIT may remain)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', port))
        finally: stop_server(proc)


def test_slow_silent_and_oversized_clients_are_cut_off(server):
    """A silent connection and unfinished headers are closed after HEADER_TIMEOUT_S, and meanwhile others are answered;
    100 KB of headers gets 431"""
    import socket
    import time

    from captcha_nb.serve import HEADER_TIMEOUT_S
    _, url = server
    host, port = url.split('//')[1].split(':')
    def closed_after(payload: bytes) -> float:
        # Without the guard nothing closes them and recv times out. The bound is wide because the clock starts at
        # connect, not at the server's accept: once, on a loaded CI machine, a close came 56 s after connecting
        with socket.create_connection((host, int(port)), timeout=HEADER_TIMEOUT_S + 90) as s:
            t0 = time.time(); s.sendall(payload)
            while s.recv(65536): pass  # until the server closes
            return time.time() - t0
    with ThreadPoolExecutor(2) as pool:
        waits = pool.map(closed_after, (b'', b'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: '))
        time.sleep(1); assert requests.get(url + '/health', timeout=30).status_code == 200  # the slow ones block nobody
        for wait in waits: assert HEADER_TIMEOUT_S - 1 < wait < HEADER_TIMEOUT_S + 60, wait
    r = requests.get(url + '/health', headers={f'x-junk-{i}': 'y' * 1000 for i in range(100)})
    assert r.status_code == 431 and r.json()['error'] == 'headers_too_large'
    assert requests.get(url + '/health').status_code == 200

"A real captcha-serve process: answers, every bad input, health, metrics, auth, and a durable prediction log."
import base64
import io
import json
import signal
import subprocess
import time

import numpy as np
import pytest
import requests
from PIL import Image

from captcha_nb.core import image_files, label_from_path
from captcha_nb.predlog import PredictionLog
from captcha_nb.testing import start_server, stop_server
from conftest import BIN


def png(im, fmt='PNG'):
    b = io.BytesIO(); im.save(b, format=fmt); return b.getvalue()


@pytest.fixture(scope='module')
def server(tiny_char_model, tmp_path_factory):
    log = tmp_path_factory.mktemp('serve')/'predictions.jsonl'
    proc, url = start_server([tiny_char_model/'model.onnx'], args=['--prediction-log', log])
    yield url, log
    assert stop_server(proc) is not None


def test_predictions_match_captcha_eval(server, tiny_char_model, char_folder):
    url, _ = server
    files = image_files(char_folder)
    served = [requests.post(f'{url}/predict', files={'file': (f.name, f.read_bytes(), 'image/png')}).json() for f in files]
    labels = [s['label'] for s in served]
    ev = json.loads(subprocess.run([BIN/'captcha-eval', tiny_char_model/'model.onnx', char_folder],
                                   capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    truth = [label_from_path(f) for f in files]
    assert round(np.mean([a == b for a, b in zip(labels, truth)]), 4) == ev['char_acc']
    s = served[0]
    assert set(s) == {'label', 'confidence', 'probabilities'} and len(s['probabilities']) == 20
    assert abs(sum(s['probabilities'].values()) - 1) < 1e-3 and s['confidence'] == max(s['probabilities'].values())


def test_json_base64_and_raw_bytes(server, char_folder):
    url, _ = server
    data = image_files(char_folder)[0].read_bytes()
    a = requests.post(f'{url}/predict', files={'file': ('x.png', data)}).json()
    b = requests.post(f'{url}/predict', json={'image': base64.b64encode(data).decode()}).json()
    c = requests.post(f'{url}/predict', data=data, headers={'content-type': 'image/png'}).json()
    assert a == b == c


@pytest.mark.parametrize('mode', ['RGB', 'RGBA', 'P', '1', 'L'])
@pytest.mark.parametrize('fmt', ['PNG', 'JPEG', 'BMP', 'GIF'])
def test_any_format_mode_and_size(server, mode, fmt):
    url, _ = server
    im = Image.new(mode, (97, 131), 0 if mode != '1' else 1)
    if fmt == 'JPEG' and mode not in ('RGB', 'L'): im = im.convert('RGB')
    r = requests.post(f'{url}/predict', files={'file': ('x', png(im, fmt))})
    assert r.status_code == 200, r.text


def _zero_width_png() -> bytes:
    import struct
    import zlib
    ihdr = struct.pack('>IIBBBBB', 0, 10, 8, 0, 0, 0, 0)
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b'')


BAD = {
    'empty multipart file': (dict(files={'file': ('x.png', b'')}), 400, 'empty_body'),
    'empty raw body': (dict(data=b'', headers={'content-type': 'image/png'}), 400, 'empty_body'),
    'non-image bytes': (dict(files={'file': ('x.png', b'hello world')}), 415, 'not_an_image'),
    'truncated png': (dict(files={'file': ('x.png', png(Image.new('L', (64, 64), 9))[:70])}), 400, 'corrupt_image'),
    'zero-size image': (dict(files={'file': ('x.png', _zero_width_png())}), (400, 415), None),  # PIL cannot even identify it
    'decompression bomb': (dict(files={'file': ('x.png', png(Image.new('1', (12000, 12000))))}), 413, 'too_large'),
    'wrong json': (dict(data=b'{"image": ', headers={'content-type': 'application/json'}), 400, 'bad_json'),
    'invalid base64': (dict(json={'image': '###not base64###'}), 400, 'bad_base64'),
    'wrong json field': (dict(json={'picture': 'aGVsbG8='}), 422, 'wrong_field'),
    'wrong form field': (dict(files={'image': ('x.png', b'123')}), 422, 'wrong_field'),
    'text form field': (dict(data={'file': 'not a file'}), 422, 'wrong_field'),
    'oversized body': (dict(data=b'0' * (11 * 2**20), headers={'content-type': 'image/png'}), 413, 'body_too_large'),
    'wrong content type': (dict(data=b'abc', headers={'content-type': 'text/plain'}), 415, 'bad_content_type'),
}


@pytest.mark.parametrize('name', BAD)
def test_bad_input_is_4xx_and_server_keeps_serving(server, char_folder, name):
    url, _ = server
    kwargs, status, kind = BAD[name]
    r = requests.post(f'{url}/predict', **kwargs)
    assert r.status_code in (status if isinstance(status, tuple) else (status,)), (r.status_code, r.text)
    body = r.json()
    assert body['detail'] and (kind is None or body['error'] == kind)
    ok = requests.post(f'{url}/predict', files={'file': ('x.png', image_files(char_folder)[0].read_bytes())})
    assert ok.status_code == 200


def test_unloaded_endpoint_is_clear_4xx(server):
    url, _ = server
    r = requests.post(f'{url}/solve', json={'image': 'aGVsbG8='})
    assert r.status_code == 404 and 'no CAPTCHA model' in r.json()['detail']


def test_health_and_info(server):
    url, _ = server
    assert requests.get(f'{url}/health').status_code == 200
    info = requests.get(f'{url}/info').json()['model']
    m = info['models']['/predict']
    assert m['task'] == 'char' and m['alphabet'] == '2345678abcdefgmnpwxy' and m['file'].endswith('model.onnx')
    assert info['versions']['onnxruntime']


def test_metrics(server, char_folder):
    url, _ = server
    requests.post(f'{url}/predict', files={'file': ('x.png', image_files(char_folder)[1].read_bytes())})
    requests.post(f'{url}/predict', files={'file': ('x.png', b'junk')})
    text = requests.get(f'{url}/metrics').text
    for name in ('captcha_requests_total{path="/predict",status="200"}', 'captcha_request_errors_total{kind="not_an_image"',
                 'captcha_request_latency_seconds_bucket', 'captcha_batch_size_bucket', 'captcha_prediction_confidence_bucket',
                 'captcha_predicted_class_total{endpoint="/predict"'):
        assert name.split('{')[0] in text and (name in text or name.replace('kind="not_an_image"', 'path="/predict"') in text), name


def test_prediction_log_rows(server, char_folder):
    url, log = server
    before = len(PredictionLog(log).read()[0])
    requests.post(f'{url}/predict', files={'file': ('x.png', image_files(char_folder)[2].read_bytes())})
    rows = PredictionLog(log).read()[0]
    assert len(rows) == before + 1
    row = rows[-1]
    assert {'ts', 'endpoint', 'label', 'confidence', 'width', 'height', 'brightness', 'contrast', 'ink_ratio', 'sharpness'} <= set(row)
    assert row['width'] == 32 and row['endpoint'] == '/predict'


def test_api_key(tiny_char_model, tmp_path, char_folder):
    proc, url = start_server([tiny_char_model/'model.onnx'], env={'CAPTCHA_API_KEY': 's3cret'},
                             args=['--prediction-log', tmp_path/'p.jsonl'])
    try:
        data = image_files(char_folder)[0].read_bytes()
        assert requests.post(f'{url}/predict', files={'file': ('x.png', data)}).status_code == 401
        assert requests.post(f'{url}/predict', files={'file': ('x.png', data)}, headers={'X-API-Key': 'wrong'}).status_code == 401
        assert requests.post(f'{url}/predict', files={'file': ('x.png', data)}, headers={'X-API-Key': 's3cret'}).status_code == 200
        assert requests.get(f'{url}/metrics').status_code == 401
        assert requests.get(f'{url}/info', headers={'X-API-Key': 's3cret'}).status_code == 200
        assert requests.get(f'{url}/health').status_code == 200  # probes need no key
    finally: stop_server(proc)


def test_prediction_log_survives_kill_9(tiny_char_model, tmp_path, char_folder):
    log = tmp_path/'p.jsonl'
    proc, url = start_server([tiny_char_model/'model.onnx'], args=['--prediction-log', log])
    files = image_files(char_folder)[:25]
    try:
        for f in files:
            assert requests.post(f'{url}/predict', files={'file': ('x.png', f.read_bytes())}).status_code == 200
    finally: stop_server(proc, signal.SIGKILL)
    rows, bad = PredictionLog(log).read()
    assert len(rows) == len(files) and bad == 0


def test_refuses_to_start_without_a_valid_model(tmp_path):
    (tmp_path/'corrupt.onnx').write_bytes(b'\x08\x07garbage')
    for args in (['--model', tmp_path/'missing.onnx'], ['--model', tmp_path/'corrupt.onnx'], []):
        t0 = time.time()
        r = subprocess.run([BIN/'captcha-serve', *args, '--port', '8999'], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and 'captcha-serve:' in r.stderr, r.stderr
        assert time.time() - t0 < 30

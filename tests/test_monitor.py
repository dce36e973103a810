"Drift detection: flagged on shifted inputs, not on the same distribution; clear errors for missing, empty or corrupt logs."
import io
import json
import subprocess

import pandas as pd
import pytest
import requests
from PIL import Image, ImageEnhance, ImageFilter

from captcha_nb.core import image_features
from captcha_nb.data import synth_items
from captcha_nb.monitor import DriftError, current_frame, drift, run_drift, drift_summary
from captcha_nb.predlog import PredictionLog
from captcha_nb.testing import start_server, stop_server
from conftest import BIN


def frame(images, label='x'):
    return pd.DataFrame([dict(image_features(im), label=label, confidence=0.9) for im in images])


@pytest.fixture(scope='module')
def crops():
    return [Image.fromarray(a) for a, _ in synth_items(400, seed=11, progress=False)]


def test_same_distribution_not_flagged(crops):
    ref, cur = frame(crops[:300]), frame(crops[300:])
    s = drift_summary(run_drift(ref, cur), len(cur))
    assert not s['dataset_drift'] and s['n'] == 100 and 'brightness' in s['columns']


def new_scanner(im):
    "A client whose scanner is darker and blurrier and who sends crops at twice the size"
    im = ImageEnhance.Brightness(im).enhance(0.6).filter(ImageFilter.GaussianBlur(1.5))
    return im.resize((im.width * 2, im.height * 2))


def test_shifted_inputs_flagged(crops):
    ref, cur = frame(crops[:300]), frame([new_scanner(im) for im in crops[300:]])
    s = drift_summary(run_drift(ref, cur), len(cur))
    assert s['dataset_drift'] and s['drift_share'] >= 0.5
    assert all(s['columns'][c]['drifted'] for c in ['width', 'brightness', 'ink_ratio', 'sharpness'])
    assert not s['columns']['aspect']['drifted']  # same shape, only bigger


def _log(path, rows): PredictionLog(path).append(rows)


def test_errors_are_clear(tmp_path, crops):
    frame(crops[:50]).to_csv(tmp_path/'reference.csv', index=False)
    with pytest.raises(DriftError, match='no prediction log'): drift(tmp_path, tmp_path/'none.jsonl')
    (tmp_path/'empty.jsonl').write_text('')
    with pytest.raises(DriftError, match='only 0 usable'): drift(tmp_path, tmp_path/'empty.jsonl')
    (tmp_path/'corrupt.jsonl').write_bytes(b'\x00\xff garbage\n{"half": \n' * 30)
    with pytest.raises(DriftError, match='unreadable'): drift(tmp_path, tmp_path/'corrupt.jsonl')
    with pytest.raises(DriftError, match='no reference'): drift(tmp_path/'nowhere', tmp_path/'empty.jsonl')


def test_cli(tmp_path, crops):
    frame(crops[:200]).to_csv(tmp_path/'reference.csv', index=False)
    rows = [dict(ts=0, endpoint='/predict', **image_features(im), label='x', confidence=0.9) for im in crops[200:260]]
    _log(tmp_path/'predictions.jsonl', rows)
    r = subprocess.run([BIN/'captcha-drift', tmp_path, '--last', '50'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.splitlines()[-1])
    assert s['n'] == 50 and s['dataset_drift'] is False and (tmp_path/'drift.html').stat().st_size > 10000
    r = subprocess.run([BIN/'captcha-drift', tmp_path, '--log', tmp_path/'missing.jsonl'], capture_output=True, text=True)
    assert r.returncode != 0 and 'captcha-drift: no prediction log' in r.stderr


def test_current_frame_filters_endpoint(tmp_path, crops):
    rows = [dict(ts=0, endpoint='/solve' if i % 2 else '/predict', **image_features(im), label='x', confidence=1.0)
            for i, im in enumerate(crops[:40])]
    _log(tmp_path/'p.jsonl', rows)
    assert len(current_frame(tmp_path/'p.jsonl', endpoint='/predict')) == 20
    assert len(current_frame(tmp_path/'p.jsonl', last=12)) == 12


def test_server_drift_endpoints(tiny_char_model, tmp_path, crops):
    log = tmp_path/'p.jsonl'
    proc, url = start_server([tiny_char_model/'model.onnx'], args=['--prediction-log', log])
    try:
        r = requests.get(f'{url}/drift.json')
        assert r.status_code == 409 and 'no prediction log' in r.json()['detail']
        log.write_bytes(b'not json at all\n' * 5)
        r = requests.get(f'{url}/drift.json')
        assert r.status_code == 409 and 'unreadable' in r.json()['detail']
        assert requests.get(f'{url}/drift').status_code == 409
        log.unlink()
        for im in crops[:30]:
            b = io.BytesIO(); im.save(b, 'PNG')
            assert requests.post(f'{url}/predict', files={'file': ('x.png', b.getvalue())}).status_code == 200
        s = requests.get(f'{url}/drift.json', params={'last': 20}).json()
        assert {'dataset_drift', 'drift_share', 'columns', 'n'} <= set(s) and s['n'] == 20
        assert 'html' in requests.get(f'{url}/drift').headers['content-type']
        assert requests.get(f'{url}/drift.json', params={'last': 0}).status_code == 422
        assert requests.get(f'{url}/drift.json', params={'endpoint': '/solve'}).status_code == 422
        assert requests.get(f'{url}/drift.json', params={'last': 'abc'}).status_code == 422
    finally: stop_server(proc)


def test_alert_rules_pass_promtool():
    "The alert rules are valid and fire (only) on the series that should trigger them (monitoring/alerts_test.yml)"
    import shutil
    if not shutil.which('promtool'): pytest.skip("promtool not installed (Debian package 'prometheus'; .ci/run installs it)")
    root = BIN.parents[1]/'monitoring'
    for cmd in (['check', 'rules', root/'alerts.yml'], ['check', 'config', root/'prometheus.yml'], ['test', 'rules', root/'alerts_test.yml']):
        r = subprocess.run(['promtool', *map(str, cmd)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr

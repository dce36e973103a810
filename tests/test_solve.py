"Whole CAPTCHAs end to end: a tiny CTC model trained by papermill, captcha-eval with seq_acc, /solve on real images."
import json
import subprocess

import pytest
import requests

from captcha_nb.core import image_files
from captcha_nb.data import write_synth
from captcha_nb.testing import start_server, stop_server
from conftest import BIN, SHARED
from test_serve import BAD


@pytest.fixture(scope='module')
def captcha_folder(tmp_path_factory):
    return write_synth(tmp_path_factory.mktemp('caps')/'synth', 12, task='captcha', seed=5, progress=False)


@pytest.fixture(scope='module')
def both(tiny_char_model, tiny_captcha_model, tmp_path_factory):
    proc, url = start_server([tiny_char_model/'model.onnx', tiny_captcha_model/'model.onnx'],
                             args=['--prediction-log', tmp_path_factory.mktemp('solve')/'p.jsonl'])
    yield url
    stop_server(proc)


def test_eval_prints_seq_acc(tiny_captcha_model, captcha_folder):
    r = subprocess.run([BIN/'captcha-eval', tiny_captcha_model/'model.onnx', captcha_folder], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.splitlines()[-1])
    assert res['n'] == 12 and {'seq_acc', 'char_acc', 'per_class'} <= set(res) and 'seq_acc' in r.stdout


def test_export_metadata_says_captcha(tiny_captcha_model):
    "A whole-CAPTCHA run with no real data reads the general family: 4-8 characters of 0-9a-z, case folded, aspect kept"
    from captcha_nb.export import OnnxReader
    r = OnnxReader(tiny_captcha_model/'model.onnx')
    assert r.task == 'captcha' and r.size == (192, 48) and r.text_len == 8 and r.meta['blank_index'] == '0'
    assert (r.min_len, r.max_len, r.case, r.resize, r.alphabet) == (4, 8, 'lower', 'letterbox', '0123456789abcdefghijklmnopqrstuvwxyz')


def test_solve_on_real_captchas(both, captcha_folder):
    folder = SHARED/'captcha_images_v2' if (SHARED/'captcha_images_v2').is_dir() else captcha_folder
    for f in image_files(folder)[:5]:
        r = requests.post(f'{both}/solve', files={'file': (f.name, f.read_bytes())})
        assert r.status_code == 200, r.text
        a = r.json()
        assert set(a) == {'text', 'confidence', 'characters'} and len(a['characters']) == len(a['text'])
        assert 0 <= a['confidence'] <= 1 and all(set(c) == {'char', 'confidence'} for c in a['characters'])


def test_both_endpoints_served_together(both, captcha_folder):
    data = image_files(captcha_folder)[0].read_bytes()
    assert 'label' in requests.post(f'{both}/predict', files={'file': ('x.png', data)}).json()
    assert 'text' in requests.post(f'{both}/solve', files={'file': ('x.png', data)}).json()
    info = requests.get(f'{both}/info').json()['model']['models']
    assert info['/predict']['task'] == 'char' and info['/solve']['task'] == 'captcha'


@pytest.mark.parametrize('name', ['empty multipart file', 'non-image bytes', 'truncated png', 'decompression bomb',
                                  'wrong json', 'invalid base64', 'wrong json field', 'oversized body'])
def test_solve_rejects_bad_input(both, captcha_folder, name):
    kwargs, status, kind = BAD[name]
    r = requests.post(f'{both}/solve', **kwargs)
    assert r.status_code == status and r.json()['error'] == kind
    assert requests.post(f'{both}/solve', files={'file': ('x.png', image_files(captcha_folder)[0].read_bytes())}).status_code == 200


def test_slice_reader_reads_five_characters(tiny_char_model, captcha_folder):
    from captcha_nb.solve import SliceReader
    r = SliceReader(tiny_char_model/'model.onnx')
    assert all(len(r.read(f)) == 5 for f in image_files(captcha_folder)[:3])


def test_two_models_for_one_task_refused(tiny_char_model, tmp_path):
    m = tiny_char_model/'model.onnx'
    r = subprocess.run([BIN/'captcha-serve', '--model', m, '--model', m, '--port', '8998'], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and 'one model per task' in r.stderr


def test_solve_hints_restrict_the_answer(both, captcha_folder):
    "alphabet and length hints, as form fields, JSON keys or query parameters, shape every answer"
    import base64
    data = image_files(captcha_folder)[0].read_bytes()
    a = requests.post(f'{both}/solve', files={'file': ('x.png', data)}, data={'alphabet': '01', 'length': '6'}).json()
    assert len(a['text']) == 6 and set(a['text']) <= set('01'), a
    b = requests.post(f'{both}/solve', json={'image': base64.b64encode(data).decode(), 'alphabet': 'XYZ', 'length': 3}).json()
    assert len(b['text']) == 3 and set(b['text']) <= set('xyz'), b  # the reader folds case: X is read as x
    c = requests.post(f'{both}/solve?length=7', data=data, headers={'content-type': 'image/png'}).json()
    assert len(c['text']) == 7
    d = requests.post(f'{both}/solve', files={'file': ('x.png', data)}).json()
    assert 4 <= len(d['text']) <= 8  # no hint: the lengths the model was trained on


@pytest.mark.parametrize('hints, detail', [({'alphabet': '!?'}, "cannot read '!?'"), ({'length': 'five'}, 'whole number'),
                                           ({'length': '99'}, 'between 1 and'), ({'length': '0'}, 'between 1 and')])
def test_solve_bad_hints_are_422(both, captcha_folder, hints, detail):
    data = image_files(captcha_folder)[0].read_bytes()
    r = requests.post(f'{both}/solve', files={'file': ('x.png', data)}, data=hints)
    assert r.status_code == 422 and r.json()['error'] == 'bad_hint' and detail in r.json()['detail'], r.text


def test_predict_refuses_hints(both, captcha_folder):
    data = image_files(captcha_folder)[0].read_bytes()
    r = requests.post(f'{both}/predict', files={'file': ('x.png', data)}, data={'alphabet': 'abc'})
    assert r.status_code == 422 and 'whole CAPTCHAs' in r.json()['detail']

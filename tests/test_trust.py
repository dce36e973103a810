"Answers you can trust: the whole-text confidence, the fitted temperature, min_confidence on the server, captcha-eval's calibration, the label audit."
import json
import subprocess

import numpy as np
import pytest
import requests
from PIL import Image

from captcha_nb.core import ALPHABET, NORM_MEAN, NORM_STD, image_files, label_from_path
from captcha_nb.data import write_synth
from captcha_nb.export import OnnxReader, audit_folder, model_meta
from captcha_nb.testing import start_server, stop_server
from captcha_nb.train import TEMPERATURES
from conftest import BIN


@pytest.fixture(scope='module')
def captcha_folder(tmp_path_factory):
    return write_synth(tmp_path_factory.mktemp('trust_caps')/'synth', 12, task='captcha', seed=5, progress=False)


@pytest.fixture(scope='module')
def both(tiny_char_model, tiny_captcha_model):
    proc, url = start_server([tiny_char_model/'model.onnx', tiny_captcha_model/'model.onnx'])
    yield url
    stop_server(proc)


def test_confidence_is_the_probability_of_the_whole_text(tiny_captcha_model, captcha_folder):
    "The served confidence is P(text) summed over every CTC path at the model's temperature: torch's ctc_loss agrees"
    import torch
    import torch.nn.functional as F
    r = OnnxReader(tiny_captcha_model/'model.onnx')
    metrics = json.loads((tiny_captcha_model/'metrics.json').read_text())
    assert r.temperature == metrics['calibration']['temperature'] > 0
    files = image_files(captcha_folder)[:6]
    logits = r.logits(np.stack([r.preprocess(f) for f in files]))
    for lg, a in zip(logits, r.answers(logits)):
        if not a['text']: continue
        lp = torch.from_numpy(lg / r.temperature).log_softmax(-1)[:, None]
        target = torch.tensor([[r.alphabet.index(c) + 1 for c in a['text']]])
        p = np.exp(-F.ctc_loss(lp, target, torch.tensor([len(lg)]), torch.tensor([len(a['text'])]), reduction='sum').item())
        assert abs(p - a['confidence']) < 1e-4, (a, p)


def test_the_confidence_map_travels_in_the_onnx_metadata(tiny_captcha_model, captcha_folder, tmp_path):
    "Platt scaling fitted at training time is in the model's metadata; every answer's confidence goes through it, the ranking does not change"
    import onnx
    from captcha_nb.core import recalibrate
    metrics = json.loads((tiny_captcha_model/'metrics.json').read_text())['calibration']
    plain = OnnxReader(tiny_captcha_model/'model.onnx')
    assert plain.confidence_map == (metrics['confidence_map']['slope'], metrics['confidence_map']['bias'])
    m = onnx.load(str(tiny_captcha_model/'model.onnx'))
    for p in m.metadata_props:
        if p.key in ('confidence_slope', 'confidence_bias'): p.value = {'confidence_slope': '2.5', 'confidence_bias': '0.7'}[p.key]
    onnx.save(m, str(tmp_path/'mapped.onnx'))
    mapped = OnnxReader(tmp_path/'mapped.onnx')
    assert mapped.confidence_map == (2.5, 0.7)
    files = image_files(captcha_folder)
    before, after = plain.predict(files), mapped.predict(files)
    assert [a['text'] for a in before] == [a['text'] for a in after]
    for a, b in zip(before, after):
        assert abs(b['confidence'] - recalibrate(a['confidence'], 2.5, 0.7)) < 1e-3, (a, b)
        assert [c['confidence'] for c in a['characters']] == [c['confidence'] for c in b['characters']]  # per character: T only


def test_the_confidence_averages_moved_views(tiny_captcha_model, captcha_folder, tmp_path):
    "A whole CAPTCHA's text is the reading of any view most probable over the image and its moved copies, its confidence that P(text) averaged; the Learner agrees"
    import onnx
    import torch
    import torch.nn.functional as F
    from captcha_nb.core import VIEW_MOVES, recalibrate, view_stack
    from captcha_nb.export import load_model, predict_answers
    from captcha_nb.train import TrainConfig
    metrics = json.loads((tiny_captcha_model/'metrics.json').read_text())['calibration']
    r = OnnxReader(tiny_captcha_model/'model.onnx')
    assert r.views == metrics['views'] == 1 + len(VIEW_MOVES)
    x = np.stack([r.preprocess(f) for f in image_files(captcha_folder)[:6]])
    out = r.outputs(x)
    assert out.shape[:2] == (6, r.views) and np.allclose(out[:, 0], r.logits(x), atol=1e-5)
    assert np.allclose(out[2, 3], r.logits(view_stack(x[2, 0])[3][None, None])[0], atol=1e-5)
    averaged = r.answers(out)
    def p_text(views, text):  # P(text) averaged over the views, by torch's CTC loss
        target = torch.tensor([[r.alphabet.index(c) + 1 for c in text]])
        return np.mean([np.exp(-F.ctc_loss(torch.from_numpy(v / r.temperature).log_softmax(-1)[:, None], target, torch.tensor([len(v)]),
                                           torch.tensor([target.shape[1]]), reduction='sum').item()) for v in views])
    for views, a in zip(out, averaged):
        readings = {b['text'] for b in r.answers(views)}  # what each view reads alone
        assert a['text'] in readings
        if not a['text']: continue
        p = p_text(views, a['text'])
        assert all(p >= p_text(views, t) - 1e-6 for t in readings if t), (a, readings)
        assert abs(recalibrate(p, *r.confidence_map) - a['confidence']) < 1e-4, (a, p)
    m = onnx.load(str(tiny_captcha_model/'model.onnx'))  # a model exported before views reads the image alone
    m.metadata_props.remove(next(p for p in m.metadata_props if p.key == 'confidence_views'))
    onnx.save(m, str(tmp_path/'old.onnx'))
    old = OnnxReader(tmp_path/'old.onnx')
    assert old.views == 1 and old.outputs(x).shape == r.logits(x).shape
    for p in m.metadata_props:
        if p.key == 'alphabet': m.metadata_props.add(key='confidence_views', value='9'); break
    onnx.save(m, str(tmp_path/'bad.onnx'))
    with pytest.raises(ValueError, match='confidence_views must be 1 to 7, not 9'): OnnxReader(tmp_path/'bad.onnx')
    arrays = [a for a, _ in grid_items(captcha_folder, r)]
    onnx_texts, onnx_confs = predict_answers(r, arrays)
    learner_texts, learner_confs = predict_answers(load_model(tiny_captcha_model/'learner.pkl'), arrays)
    assert onnx_texts == learner_texts and np.allclose(onnx_confs, learner_confs, atol=2e-3)
    with pytest.raises(ValueError, match='views must be 1 to 7'): TrainConfig(views=0)


def grid_items(folder, reader):
    "The folder's images as the reader's input grid (uint8), the way training holds them"
    from captcha_nb.data import import_folder
    from captcha_nb.export import model_input
    return import_folder(folder, 'captcha', None, None, progress=False, **model_input(reader)).items[:8]


def test_training_reports_calibration(tiny_char_model):
    m = json.loads((tiny_char_model/'metrics.json').read_text())['calibration']
    assert m['fitted_on']['n'] > 0 and TEMPERATURES[0] <= m['temperature'] <= TEMPERATURES[-1]
    for split in ('valid', 'test'):
        c = m[split]
        assert 0 <= c['ece'] <= 1 and 0 <= c['ece_floor'] <= 1 and [t['threshold'] for t in c['coverage']] == [0.5, 0.8, 0.9, 0.95, 0.99]
        assert abs(c['keep_90']['kept'] - 0.9) < 0.05
    assert (tiny_char_model/'reliability.png').stat().st_size > 5000
    assert OnnxReader(tiny_char_model/'model.onnx').temperature == m['temperature']


def test_min_confidence_marks_unsure_and_counts(both, captcha_folder, tiny_char_model):
    import base64
    data = image_files(captcha_folder)[0].read_bytes()
    plain = requests.post(f'{both}/solve', files={'file': ('x.png', data)}).json()
    assert 'unsure' not in plain
    strict = requests.post(f'{both}/solve', files={'file': ('x.png', data)}, data={'min_confidence': '1'}).json()
    lax = requests.post(f'{both}/solve?min_confidence=0', data=data, headers={'content-type': 'image/png'}).json()
    assert strict['text'] == lax['text'] == plain['text']  # the best guess is always given
    assert strict['unsure'] is (plain['confidence'] < 1) and lax['unsure'] is False
    crop = image_files(write_synth(tiny_char_model/'trust_chars', 1, progress=False))[0].read_bytes()
    c = requests.post(f'{both}/predict', json={'image': base64.b64encode(crop).decode(), 'min_confidence': 1.0}).json()
    assert c['unsure'] is (c['confidence'] < 1)
    text = requests.get(f'{both}/metrics').text
    line = next(l for l in text.splitlines() if l.startswith('captcha_unsure_answers_total{endpoint="/solve"}'))
    assert float(line.split()[-1]) >= int(strict['unsure'])


@pytest.mark.parametrize('value', ['1.5', '-0.1', 'sure', 'nan'])
def test_bad_min_confidence_is_422(both, captcha_folder, value):
    data = image_files(captcha_folder)[0].read_bytes()
    r = requests.post(f'{both}/solve', files={'file': ('x.png', data)}, data={'min_confidence': value})
    assert r.status_code == 422 and r.json()['error'] == 'bad_hint' and 'min_confidence' in r.json()['detail'], r.text


def test_eval_reports_calibration_at_min_confidence(tiny_captcha_model, captcha_folder):
    r = subprocess.run([BIN/'captcha-eval', tiny_captcha_model/'model.onnx', captcha_folder, '--min-confidence', '0.3'],
                       capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.splitlines()[-1])
    answers = OnnxReader(tiny_captcha_model/'model.onnx').predict(image_files(captcha_folder))
    kept = [a['confidence'] >= 0.3 for a in answers]
    assert res['at_min_confidence']['kept'] == round(np.mean(kept), 4) and 'calibration: ECE' in r.stdout
    truths = [label_from_path(f) for f in image_files(captcha_folder)]
    right = [a['text'] == t for a, t in zip(answers, truths)]
    assert res['calibration']['accuracy'] == round(np.mean(right), 4) == res['seq_acc']


def oracle_char_onnx(path, levels) -> OnnxReader:
    "A hand-built ONNX 'model' that reads a crop's class from its mean grey level (class k at grey `levels[k]`)"
    import onnx
    from onnx import TensorProto, helper
    centres = ((np.asarray(levels, np.float32) / 255 - NORM_MEAN) / NORM_STD)[None]
    g = helper.make_graph(
        [helper.make_node('ReduceMean', ['image', 'axes'], ['m'], keepdims=1),  # (B, 1, 1, 1)
         helper.make_node('Reshape', ['m', 'shape'], ['mb']),                     # (B, 1)
         helper.make_node('Sub', ['mb', 'centres'], ['d']), helper.make_node('Mul', ['d', 'd'], ['sq']),
         helper.make_node('Mul', ['sq', 'scale'], ['logits'])], 'oracle',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, ['batch', 1, 52, 32])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['batch', len(levels)])],
        [helper.make_tensor('axes', TensorProto.INT64, [3], [1, 2, 3]), helper.make_tensor('shape', TensorProto.INT64, [2], [-1, 1]),
         helper.make_tensor('centres', TensorProto.FLOAT, centres.shape, centres.ravel()),
         helper.make_tensor('scale', TensorProto.FLOAT, [], [-2000.0])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 18)])
    m.ir_version = 8
    for k, v in model_meta('char', ALPHABET).items(): m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(path))
    return OnnxReader(path)


def test_audit_flags_exactly_the_relabelled_crops(tmp_path):
    "cleanlab's confident learning, with a model that reads every crop right, flags the three crops whose label was changed"
    levels = [20 + 11 * k for k in range(len(ALPHABET))]
    reader = oracle_char_onnx(tmp_path/'oracle.onnx', levels)
    folder = tmp_path/'crops'; folder.mkdir()
    rng = np.random.default_rng(0)
    for k, c in enumerate(ALPHABET):
        for i in range(6):
            Image.fromarray(np.clip(levels[k] + rng.normal(0, 2, (52, 32)), 0, 255).astype(np.uint8)).save(folder/f'{c}_{k * 10 + i}.png')
    wrong = {'m_141.png': 'x', 'a_71.png': 'e', '2_2.png': '3'}  # (file, label it is given)
    for f, label in wrong.items(): (folder/f).rename(folder/f'{label}_9{f.split("_")[1]}')
    assert [a['label'] for a in reader.predict([folder/'b_80.png', folder/'x_9141.png'])] == ['b', 'm']
    res = audit_folder(reader, folder)
    assert {r['file'] for r in res['issues']} == {f'{l}_9{f.split("_")[1]}' for f, l in wrong.items()}
    assert res['n_audited'] == 120 and res['rows'][0]['label_quality'] <= res['rows'][-1]['label_quality']
    out = tmp_path/'audit'
    r = subprocess.run([BIN/'captcha-data', 'audit', folder, '--model', tmp_path/'oracle.onnx', '--out', out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted((out/'label_issues.txt').read_text().split()) == sorted(r2['file'] for r2 in res['issues'])
    assert (out/'label_issues.png').stat().st_size > 2000 and json.loads(r.stdout.splitlines()[-1])['n_flagged'] == 3
    # training leaves the flagged files out, and says so
    from captcha_nb.train import training_data
    _, real, summary = training_data('char', str(folder), exclude=str(out/'label_issues.txt'), progress=False, valid_pct=0.2, test_pct=0)
    src = summary['sources'][0]
    assert src['problems'] == {'excluded': 3} and src['n_ok'] == 117 and len(real['train']) + len(real['valid']) == 117


def test_audit_of_whole_captchas_ranks_by_label_probability(tiny_captcha_model, captcha_folder, tmp_path):
    "With a CTC model: every label scored, sorted by its probability; a file is flagged only when the model reads otherwise, sure enough"
    res = audit_folder(OnnxReader(tiny_captcha_model/'model.onnx'), captcha_folder, min_confidence=0.0)
    q = [r['label_quality'] for r in res['rows']]
    assert res['n_audited'] == 12 and q == sorted(q) and all(0 <= v <= 1 for v in q)
    assert {r['file'] for r in res['issues']} == {r['file'] for r in res['rows'] if r['reading'] != r['label']}


def test_audit_refuses_what_it_cannot_do(tiny_char_model, captcha_folder, tmp_path):
    r = subprocess.run([BIN/'captcha-data', 'audit', captcha_folder, '--model', tiny_char_model], capture_output=True, text=True)
    assert r.returncode != 0 and 'does not hold char images' in r.stderr
    r = subprocess.run([BIN/'captcha-data', 'audit', captcha_folder, '--model', tmp_path/'none.onnx'], capture_output=True, text=True)
    assert r.returncode != 0 and 'no model' in r.stderr
    r = subprocess.run([BIN/'captcha-train', '--real-dirs', captcha_folder, '--exclude', tmp_path/'missing.txt', '--out-dir', tmp_path/'o'],
                       capture_output=True, text=True)
    assert r.returncode != 0 and 'no file list at' in (r.stderr + r.stdout)

"Training through papermill, evaluation and export commands end to end."
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import BIN, train_tiny


def last_json(out: str) -> dict: return json.loads(out.strip().splitlines()[-1])


def test_metrics_json_is_complete(tiny_char_model):
    m = json.loads((tiny_char_model/'metrics.json').read_text())
    for key in ('params', 'data', 'test', 'history', 'profile', 'timings', 'versions', 'git_commit'):
        assert key in m, key
    assert m['params']['task'] == 'char' and m['params']['epochs'] == 1
    assert set(m['test']) >= {'n', 'char_acc', 'per_class'} and len(m['history']) == 1
    assert {'train_loss', 'valid_loss', 'accuracy'} <= set(m['history'][0])
    for f in ('learner.pkl', 'history.csv', 'loss.png', 'confusion.png', 'reference.csv', 'samples.npz', 'train.ipynb'):
        assert (tiny_char_model/f).exists(), f


def test_same_seed_same_metrics(tiny_char_model, tmp_path):
    again = train_tiny(tmp_path/'again')
    a = json.loads((tiny_char_model/'metrics.json').read_text())
    b = json.loads((again/'metrics.json').read_text())
    assert a['test'] == b['test'] and a['history'] == b['history']


def test_eval_learner_and_onnx_agree(tiny_char_model, char_folder):
    learner = last_json(subprocess.run([BIN/'captcha-eval', tiny_char_model/'learner.pkl', char_folder],
                                       capture_output=True, text=True, check=True).stdout)
    onnx = last_json(subprocess.run([BIN/'captcha-eval', tiny_char_model/'model.onnx', char_folder],
                                    capture_output=True, text=True, check=True).stdout)
    assert learner['n'] == onnx['n'] == 40
    assert learner['char_acc'] == onnx['char_acc'] and learner['per_class'] == onnx['per_class']
    assert 'seq_acc' not in onnx


def test_eval_rejects_wrong_layout(tiny_char_model, tmp_path):
    from captcha_nb.data import write_synth
    caps = write_synth(tmp_path/'caps', 3, task='captcha', progress=False)
    r = subprocess.run([BIN/'captcha-eval', tiny_char_model/'model.onnx', caps], capture_output=True, text=True)
    assert r.returncode != 0 and 'captcha images but the model reads char images' in r.stderr


def test_eval_missing_model(tmp_path, char_folder):
    r = subprocess.run([BIN/'captcha-eval', tmp_path/'nope.onnx', char_folder], capture_output=True, text=True)
    assert r.returncode != 0 and 'no model' in r.stderr


def test_export_report_and_metadata(tiny_char_model):
    rep = json.loads((tiny_char_model/'export.json').read_text())
    assert rep['parity']['top1_agreement'] == 1.0 and rep['parity']['max_abs_diff'] < 1e-3
    assert set(rep['models']) == {'model.onnx', 'model.int8.onnx'}
    assert rep['models']['model.int8.onnx']['size_mb'] < rep['models']['model.onnx']['size_mb'] / 3
    from captcha_nb.export import OnnxReader
    r = OnnxReader(tiny_char_model/'model.int8.onnx')
    assert r.task == 'char' and r.size == (32, 52) and r.alphabet == '2345678abcdefgmnpwxy'


def test_onnx_dynamic_batch(tiny_char_model):
    from captcha_nb.export import OnnxReader
    r = OnnxReader(tiny_char_model/'model.onnx')
    for n in (1, 7, 64): assert r.logits(np.zeros((n, 1, 52, 32), np.float32)).shape == (n, 20)


def test_export_missing_dir(tmp_path):
    r = subprocess.run([BIN/'captcha-export', tmp_path], capture_output=True, text=True)
    assert r.returncode != 0 and 'captcha-export:' in r.stderr


def test_parity_check_fails_loudly(tiny_char_model):
    "A model whose weights changed after export must be caught"
    import torch
    from captcha_nb.export import ExportError, load_learner_meta, parity_check
    learn = load_learner_meta(tiny_char_model/'learner.pkl')
    x = np.load(tiny_char_model/'samples.npz')['calib_x'][:16]
    with torch.no_grad(): learn.model.fc.bias += 5 * torch.randn_like(learn.model.fc.bias)
    with pytest.raises(ExportError, match='differs'): parity_check(learn.model, tiny_char_model/'model.onnx', x)


def test_pretrained_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    from captcha_nb.model import char_model
    with pytest.raises(RuntimeError, match='pretrained=False'): char_model(pretrained=True)


def test_init_from_another_scheme(tiny_captcha_model):
    "A model for another alphabet starts from a trained CAPTCHA model: every layer but the head is copied"
    import torch
    from fastai.learner import load_learner
    from captcha_nb.model import CTCReader
    from captcha_nb.train import init_weights_from
    model = CTCReader(n_classes=23)
    r = init_weights_from(model, tiny_captcha_model)
    assert r['new'] == ['head.bias', 'head.weight'] and r['loaded'] > 50
    theirs = load_learner(tiny_captcha_model/'learner.pkl', cpu=True).model.state_dict()
    mine = model.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith('head.'))
    with pytest.raises(FileNotFoundError, match='train that run first'): init_weights_from(model, tiny_captcha_model/'nothing')


def test_training_needs_data():
    from captcha_nb.train import training_data
    with pytest.raises(ValueError, match='not enough data'): training_data('char', n_synth=0)


def test_training_data_keeps_real_test_real(real_chars):
    from captcha_nb.train import training_data
    splits, real, summary = training_data('char', str(real_chars), n_synth=100, progress=False)
    assert summary['test_is_real'] and splits['test'] == real['test'] and len(splits['test']) > 20
    assert len(splits['train']) > 100


def test_wandb_offline_run(tmp_path):
    "The W&B logger writes an offline run without a key or network"
    d = train_tiny(tmp_path/'wb', extra=['-p', 'wandb_mode', 'offline'])
    assert list((d/'wandb').glob('offline-run-*')), os.listdir(d/'wandb')


def test_ddp_two_cpu_processes_agree(tmp_path):
    "fastai DDP through torchrun with 2 CPU processes (gloo): both ranks end with the same weights and metrics"
    out = tmp_path/'ddp'
    r = subprocess.run([BIN/'torchrun', '--standalone', '--nproc-per-node', '2', 'tools/ddp_train.py', out,
                        '-p', 'n_synth', '256', '-p', 'epochs', '1', '-p', 'wandb_mode', 'disabled'],
                       capture_output=True, text=True, cwd=BIN.parents[1])
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (json.loads((d/'metrics.json').read_text()) for d in (out, out/'rank1'))
    assert a['distributed'] == {'rank': 0, 'world_size': 2} and b['distributed'] == {'rank': 1, 'world_size': 2}
    assert a['weights_sha1'] == b['weights_sha1'] and a['history'] == b['history'] and a['test'] == b['test']
    assert (out/'learner.pkl').exists() and not (out/'rank1'/'learner.pkl').exists()


def test_interrupted_training_leaves_no_finished_looking_run(tmp_path):
    "Kill papermill mid-training: no metrics.json or half-written Learner remains; export refuses; a re-run completes"
    import signal
    import time
    out = tmp_path/'run'
    cmd = [BIN/'papermill', 'nbs/03_train.ipynb', out/'train.ipynb', '--cwd', 'nbs', '--no-progress-bar',
           '-p', 'n_synth', '3000', '-p', 'epochs', '3', '-p', 'out_dir', out, '-p', 'wandb_mode', 'disabled']
    out.mkdir()
    p = subprocess.Popen(cmd, cwd=BIN.parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while not (out/'history.csv').exists() and time.time() - t0 < 300: time.sleep(0.5)  # training has started
    time.sleep(3)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert not (out/'metrics.json').exists() and not (out/'learner.pkl').exists()
    r = subprocess.run([BIN/'captcha-export', out], capture_output=True, text=True)
    assert r.returncode != 0 and 'no complete training run' in r.stderr
    d = train_tiny(out)
    assert json.loads((d/'metrics.json').read_text())['params']['n_synth'] == 600


def test_sweep_runs_a_grid_and_compares(tmp_path):
    r = subprocess.run([BIN/'python', 'benchmarks/sweep.py', tmp_path, '-g', 'seed=1,2', '-p', 'n_synth=200', '-p', 'epochs=1',
                        '-p', 'wandb_mode=disabled'], capture_output=True, text=True, cwd=BIN.parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    import csv
    rows = list(csv.DictReader(open(tmp_path/'sweep.csv')))
    assert sorted(row['seed'] for row in rows) == ['1', '2'] and all(row['test_char_acc'] for row in rows)
    again = subprocess.run([BIN/'python', 'benchmarks/sweep.py', tmp_path, '-g', 'seed=1,2', '-p', 'n_synth=200'],
                           capture_output=True, text=True, cwd=BIN.parents[1])
    assert again.stdout.count('done already') == 2  # an interrupted or repeated sweep resumes

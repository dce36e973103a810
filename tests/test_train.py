"Training through papermill, evaluation and export commands end to end."
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN, ROOT, train_tiny, write_captchas


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
    "The same seed gives the same run, with or without W&B logging (the fixture logs offline, this run not at all)"
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
    # huggingface_hub reads the variable once, at import: an earlier test imported it, so set its constant too
    # (else the hub retries the network for 46 s before failing the same way)
    monkeypatch.setattr('huggingface_hub.constants.HF_HUB_OFFLINE', True)
    from captcha_nb.model import char_model
    with pytest.raises(RuntimeError, match='pretrained=False'): char_model(pretrained=True)


def test_a_reader_left_on_the_blank_plateau_says_so(tiny_captcha_model, tiny_char_model):
    "The tiny reader (160 images, one epoch) reads nothing: its run warns in metrics.json and in the executed notebook"
    m = json.loads((tiny_captcha_model/'metrics.json').read_text())
    assert len(m['warnings']) == 1 and "CTC's all-blank plateau" in m['warnings'][0] and '--images' in m['warnings'][0]
    assert m['valid']['all_blank'] > 0.5, m['valid']  # blank at every step on most of them: the plateau itself (stuck_on_plateau)
    assert "CTC's all-blank plateau" in (tiny_captcha_model/'train.ipynb').read_text()
    assert json.loads((tiny_char_model/'metrics.json').read_text())['warnings'] == []  # a character model has no such plateau


def _reader_that_reads(run: Path, dest: Path) -> Path:
    "`run` as if it read half of its validation CAPTCHAs: its learner, and a metrics.json that says so"
    dest.mkdir()
    (dest/'learner.pkl').symlink_to(run/'learner.pkl')
    m = json.loads((run/'metrics.json').read_text()); m['valid']['seq_acc'] = 0.5
    (dest/'metrics.json').write_text(json.dumps(m))
    return dest


def test_init_from_another_scheme(tiny_captcha_model, tmp_path):
    "A model for another alphabet starts from a trained CAPTCHA model that reads: every layer but the head is copied"
    import torch
    from fastai.learner import load_learner
    from captcha_nb.model import CTCReader
    from captcha_nb.train import init_weights_from
    model = CTCReader(n_classes=23)
    r = init_weights_from(model, _reader_that_reads(tiny_captcha_model, tmp_path/'reads'))
    assert r['new'] == ['head.bias', 'head.weight'] and r['loaded'] > 50 and r['skipped'] == []
    theirs = load_learner(tiny_captcha_model/'learner.pkl', cpu=True).model.state_dict()
    mine = model.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith('head.'))
    with pytest.raises(FileNotFoundError, match='train that run first'): init_weights_from(model, tiny_captcha_model/'nothing')


def test_init_from_a_reader_stuck_on_the_plateau_starts_from_what_it_started_from(tiny_captcha_model, tiny_char_model, tmp_path):
    "A reader on CTC's blank plateau (by its metrics.json: none read, most blank) is skipped for the run it started from, else for random weights; one that answers characters is not"
    import torch
    from fastai.learner import load_learner
    from captcha_nb.model import CTCReader
    from captcha_nb.train import init_weights_from
    def reader(name, all_blank, started_from=None):  # the tiny reader (reads nothing) with a blank share and an origin of our choosing
        d = tmp_path/name; d.mkdir()
        (d/'learner.pkl').symlink_to(tiny_captcha_model/'learner.pkl')
        m = json.loads((tiny_captcha_model/'metrics.json').read_text())
        m['valid'] = dict(m['valid'], seq_acc=0.0, all_blank=all_blank); m['init'] = dict(source=started_from and str(started_from))
        (d/'metrics.json').write_text(json.dumps(m))
        return d
    model = CTCReader(n_classes=10)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    stuck = reader('stuck', 0.97)  # started from random weights
    r = init_weights_from(model, stuck, '0123456789')
    assert r['source'] is None and r['loaded'] == 0 and r['skipped'] == [str(stuck/'learner.pkl')]
    assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items())
    stuck = reader('stuck_from_chars', 0.97, tiny_char_model/'learner.pkl')
    r = init_weights_from(model, stuck, '0123456789')
    assert r['source'] == str(tiny_char_model/'learner.pkl') and r['skipped'] == [str(stuck/'learner.pkl')] and r['loaded'] > 50
    theirs = load_learner(tiny_char_model/'learner.pkl', cpu=True).model.state_dict()
    assert all(torch.equal(v, theirs[k[len('trunk.'):]]) for k, v in model.state_dict().items() if k.startswith('trunk.'))
    answers = reader('answers_characters', 0.31, tiny_char_model/'learner.pkl')  # reads no CAPTCHA whole, but is off the plateau
    r = init_weights_from(model, answers, '0123456789')
    assert r['source'] == str(answers/'learner.pkl') and r['skipped'] == [] and r['loaded'] > 50


def test_training_needs_data():
    from captcha_nb.train import training_data
    with pytest.raises(ValueError, match='not enough data'): training_data('char', n_synth=0)


def test_diverged_training_stops_with_a_message(tmp_path):
    "A loss gone NaN (here a learning rate of 1e30) stops captcha-train with what to do; no model is left to export"
    out = tmp_path/'run'
    r = subprocess.run([BIN/'captcha-train', '--task', 'char', '--n-synth', '300', '--epochs', '1', '--lr', '1e30',
                        '--out-dir', out, '--wandb-mode', 'disabled'], capture_output=True, text=True)
    assert r.returncode != 0 and 'training diverged' in r.stderr and 'a lower --lr than 1e+30' in r.stderr, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr and not (out/'learner.pkl').exists() and not (out/'metrics.json').exists()


def test_images_fix_the_amount_of_training(tmp_path):
    "--images N trains on N images in all, in `epochs` equal draws from the training pool, whatever the machine's speed"
    out = tmp_path/'run'
    r = subprocess.run([BIN/'captcha-train', '--task', 'char', '--n-synth', '200', '--epochs', '2', '--images', '320', '--bs', '32',
                        '--out-dir', out, '--wandb-mode', 'disabled', '--quiet'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out/'metrics.json').read_text())
    assert m['budget'] == dict(images=320, epochs=2, images_per_epoch=160) and len(m['history']) == 2
    assert m['profile']['seconds'] and 300 <= m['profile']['images_per_s'] * sum(m['profile']['seconds'].values()) <= 330
    from captcha_nb.train import TrainConfig
    with pytest.raises(ValueError, match='not both'): TrainConfig(images=320, minutes=1)


def test_training_data_keeps_real_test_real(real_chars):
    from captcha_nb.train import training_data
    splits, real, summary = training_data('char', str(real_chars), n_synth=100, progress=False)
    assert summary['test_is_real'] and splits['test'] == real['test'] and len(splits['test']) > 20
    assert len(splits['train']) > 100


def test_a_big_folder_validates_on_max_valid_images(tmp_path):
    "Every validation image is scored after training (seven views each): a big folder validates on about max_valid, the rest trains"
    from captcha_nb.train import training_data, TrainConfig
    folder = write_captchas(tmp_path/'big', n=300, lengths=(4, 4))
    split = lambda **kw: training_data('captcha', str(folder), alphabet='0123456789', text_len=(4, 4), progress=False,
                                       valid_pct=0.5, test_pct=0.1, **kw)
    whole, _, s_whole = split(max_valid=0)
    capped, real, s_capped = split(max_valid=30)
    assert 110 <= len(whole['valid']) <= 160 and 'real_valid_pct' not in s_whole
    labels = lambda items: [l for _, l in items]
    assert 15 <= len(capped['valid']) <= 45 and s_capped['real_valid_pct'] == 0.1 and labels(real['valid']) == labels(capped['valid'])
    assert labels(capped['test']) == labels(whole['test'])  # the test split stays as it was: only validation gives images to training
    assert len(capped['train']) + len(capped['valid']) == len(whole['train']) + len(whole['valid'])
    with pytest.raises(ValueError, match='max_valid'): TrainConfig(max_valid=-1)


def test_wandb_offline_run(tiny_char_model):
    "The W&B logger writes an offline run without a key or network"
    assert list((tiny_char_model/'wandb').glob('offline-run-*')), os.listdir(tiny_char_model/'wandb')


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
    cmd = [BIN/'papermill', 'nbs/03_train.ipynb', out/'train.ipynb', '--no-progress-bar',
           '-p', 'n_synth', '800', '-p', 'epochs', '20', '-p', 'out_dir', out, '-p', 'wandb_mode', 'disabled']  # killed long before the end
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


def test_denormals_benchmark_measures_both_modes(tiny_captcha_model, tmp_path):
    run = lambda d: subprocess.run([BIN/'python', 'benchmarks/denormals.py', d, '--seconds', '0.3'], capture_output=True, text=True,
                                   cwd=BIN.parents[1])
    r = run(tiny_captcha_model)
    assert r.returncode == 0, r.stderr[-2000:]
    res = last_json(r.stdout)
    for k in ('torch_train_batches_per_s', 'onnx_batches_per_s'): assert set(res[k]) == {'keep', 'flush'} and min(res[k].values()) > 0, res
    r = run(tmp_path)
    assert r.returncode != 0 and 'no learner.pkl' in r.stderr


# --- captcha-train: any labelled folder, one command -------------------------------------------------------

def captcha_train(*args, cwd=None):
    return subprocess.run([str(BIN/'captcha-train'), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_captcha_train_infers_the_scheme_and_exports(tmp_path):
    folder = write_captchas(tmp_path/'caps')
    (folder/'12345.png').write_bytes(b'not an image')
    out = tmp_path/'out'
    r = captcha_train('--real-dirs', folder, '--out-dir', out, '--epochs', '1', '--wandb-mode', 'disabled')
    assert r.returncode == 0, r.stderr[-3000:]
    for line in ('task        captcha', 'alphabet    0123456789 (10 characters)', 'lengths     4-6 characters', 'case        keep'):
        assert line in r.stdout, r.stdout[:2000]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert (res['task'], res['alphabet'], res['text_len'], res['case']) == ('captcha', '0123456789', '4-6', 'keep')
    m = json.loads((out/'metrics.json').read_text())
    assert m['scheme']['unreadable'] == ['12345.png'] and m['device']['type'] == 'cpu' and m['device']['precision'] in ('fp32', 'bf16')
    assert m['data']['sources'][0]['problems'] == {'unreadable': 1, 'resized': 40} or m['data']['sources'][0]['problems']['unreadable'] == 1
    e = subprocess.run([BIN/'captcha-export', out, '--no-int8'], capture_output=True, text=True)
    assert e.returncode == 0, e.stderr[-2000:]
    from captcha_nb.export import OnnxReader
    reader = OnnxReader(out/'model.onnx')
    assert (reader.min_len, reader.max_len, reader.resize, reader.case, reader.alphabet) == (4, 6, 'letterbox', 'keep', '0123456789')
    assert all(4 <= len(a['text']) <= 6 for a in reader.predict(image_files_of(folder)[:5]))


def image_files_of(folder):
    from captcha_nb.core import image_files
    return [f for f in image_files(folder) if f.name != '12345.png']


@pytest.mark.parametrize('case', ['missing folder', 'only broken files', 'one image', 'no out dir', 'folder of folders'])
def test_captcha_train_bad_folders_fail_clearly(tmp_path, case, capsys):
    folder = tmp_path/'caps'
    if case == 'only broken files':
        folder.mkdir(); (folder/'abcd.png').write_bytes(b'x'); (folder/'efgh.png').write_bytes(b'')
    if case == 'one image': write_captchas(folder, n=1)
    if case == 'folder of folders': write_captchas(folder/'train', n=3)
    args = ['--real-dirs', folder if case != 'missing folder' else tmp_path/'nope'] + ([] if case == 'no out dir' else ['--out-dir', tmp_path/'out'])
    # the command's own function, in this process (a subprocess would spend 5 s importing torch to print one line);
    # SystemExit carries what Python prints on exit, argparse writes its usage error to stderr itself
    from captcha_nb.train import captcha_train as command
    with pytest.raises(SystemExit) as e: command([*map(str, args), '--epochs', '1', '--wandb-mode', 'disabled', '--quiet'])
    err = capsys.readouterr().err + (e.value.code if isinstance(e.value.code, str) else '')
    assert e.value.code not in (0, None) and 'Traceback' not in err, err[-2000:]
    want = {'missing folder': 'captcha-train: not a folder', 'only broken files': 'no readable image',
            'one image': 'not enough data to train', 'no out dir': 'required: --out-dir',
            'folder of folders': f"the images are in subfolders ({folder/'train'} (3))"}[case]
    assert want in err, err
    if case == 'only broken files': assert 'abcd.png' in err
    if case == 'one image': assert '.png' in err  # names the file


def test_captcha_train_fine_tunes_from_another_model(tiny_captcha_model, tmp_path):
    "--init-from keeps what the other model learnt of the characters both alphabets share (the output rows too)"
    out, caps = tmp_path/'out', write_captchas(tmp_path/'caps', n=24)
    r = captcha_train('--real-dirs', caps, '--out-dir', out, '--init-from', _reader_that_reads(tiny_captcha_model, tmp_path/'reads'),
                      '--epochs', '1', '--wandb-mode', 'disabled', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('\n') == 1 and '█' not in r.stdout + r.stderr, r.stdout  # --quiet: the result line, no bar or metrics list
    init = json.loads((out/'metrics.json').read_text())['init']
    assert init['chars_from_source'] == '0123456789' and init['chars_new'] == '' and 'head.weight' not in init['new']
    assert "blank plateau" not in r.stderr and init['skipped'] == []
    # the tiny reader itself reads nothing: it is skipped, and the run says so
    r = captcha_train('--real-dirs', caps, '--out-dir', out, '--init-from', tiny_captcha_model, '--epochs', '1', '--wandb-mode', 'disabled', '--quiet')
    assert r.returncode == 0 and f"init_from {tiny_captcha_model/'learner.pkl'} reads none of its validation CAPTCHAs" in r.stderr, r.stderr[-3000:]
    assert json.loads((out/'metrics.json').read_text())['init']['skipped'] == [str(tiny_captcha_model/'learner.pkl')]


def test_papermill_from_another_folder_with_a_digit_alphabet(tmp_path):
    """papermill as a user types it from another folder: a relative out_dir lands in the repository, not beside the working
    directory; -p reads 0123456789 as a number, so the run says to use -r, and -r works (one test: a module fixture shared
    by two ran once per pytest-xdist worker)"""
    import shutil
    import uuid
    rel, cwd = f'models/test-cwd-{uuid.uuid4().hex[:8]}', tmp_path
    in_repo, beside = ROOT/rel, cwd/rel
    base = [BIN/'papermill', ROOT/'nbs'/'03_train.ipynb', cwd/'t.ipynb', '--no-progress-bar', '-p', 'task', 'captcha', '-p', 'n_synth', '64',
            '-p', 'epochs', '1', '-p', 'out_dir', rel, '-p', 'wandb_mode', 'disabled', '-p', 'text_len', '4']
    try:
        bad = subprocess.run(base + ['-p', 'alphabet', '0123456789'], capture_output=True, text=True, cwd=cwd)
        assert bad.returncode != 0 and '-r alphabet 0123456789' in bad.stdout + bad.stderr
        good = subprocess.run(base + ['-r', 'alphabet', '0123456789'], capture_output=True, text=True, cwd=cwd)
        assert good.returncode == 0, good.stderr[-3000:]
        assert (in_repo/'metrics.json').exists() and not beside.exists()
        assert json.loads((in_repo/'metrics.json').read_text())['params']['alphabet'] == '0123456789'
    finally:
        shutil.rmtree(in_repo, ignore_errors=True)

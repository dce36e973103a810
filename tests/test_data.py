"The data stage end to end: the captcha-data CLI, importers on the real sets, splits, DVC round trip."
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captcha_nb.core import ALPHABET, image_files, label_from_path
from captcha_nb.data import import_folder, split_of, split_set, synth_items, write_synth

BIN = Path(sys.executable).parent


def run(*args, cwd=None, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd)
    if check and r.returncode: raise AssertionError(f'{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    return r


def last_json(out: str) -> dict: return json.loads(out.strip().splitlines()[-1])


def test_cli_synth_chars_is_deterministic(tmp_path):
    a, b = tmp_path/'a', tmp_path/'b'
    for d in (a, b): run(BIN/'captcha-data', 'synth', '--n', 40, '--dest', d, '--seed', 3, '--quiet')
    fa, fb = image_files(a), image_files(b)
    assert len(fa) == 40 and [f.name for f in fa] == [f.name for f in fb]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(fa, fb))
    assert {label_from_path(f) for f in fa} <= set(ALPHABET)
    assert Image.open(fa[0]).size == (32, 52)
    assert json.loads((a/'meta.json').read_text())['seed'] == 3


def test_cli_synth_captchas_custom_alphabet(tmp_path):
    r = run(BIN/'captcha-data', 'synth', '--n', 5, '--task', 'captcha', '--alphabet', 'xyz', '--length', 4,
            '--dest', tmp_path, '--quiet')
    assert last_json(r.stdout)['n'] == 5
    labels = [label_from_path(f) for f in image_files(tmp_path)]
    assert all(len(t) == 4 and set(t) <= set('xyz') for t in labels)
    assert Image.open(image_files(tmp_path)[0]).size == (200, 50)


def test_cli_import_reports_problems(tmp_path):
    src = tmp_path/'src'
    write_synth(src, 10, progress=False)
    (src/'q_1.png').write_bytes(b'garbage')          # unknown character 'q'
    (src/'a_2.png').write_bytes(b'garbage')          # unreadable
    r = run(BIN/'captcha-data', 'import', '--src', src, '--dest', tmp_path/'out', '--quiet')
    s = last_json(r.stdout)
    assert s['task'] == 'char' and s['n_ok'] == 10 and s['n_files'] == 12
    assert s['problems'] == {'unknown_characters': 1, 'unreadable': 1}
    rep = json.loads((tmp_path/'out'/'import_report.json').read_text())
    assert any('q_1.png' in d for d in rep['details']['unknown_characters'])
    assert len(image_files(tmp_path/'out')) == 10


def test_cli_import_empty_folder_fails_clearly(tmp_path):
    (tmp_path/'src').mkdir()
    r = run(BIN/'captcha-data', 'import', '--src', tmp_path/'src', '--dest', tmp_path/'out', check=False)
    assert r.returncode != 0 and 'no images' in r.stderr


def test_cli_import_needs_src(tmp_path):
    r = run(BIN/'captcha-data', 'import', '--dest', tmp_path, check=False)
    assert r.returncode != 0 and '--src' in r.stderr


def test_import_real_chars(real_chars):
    s = import_folder(real_chars, progress=False)
    assert s.task == 'char' and len(s) == 305 and not s.problems
    sp = split_set(s, seed=0)
    assert sum(map(len, sp.values())) == 305 and all(len(v) > 20 for v in sp.values())


def test_import_real_captchas(real_captchas):
    s = import_folder(real_captchas, length=5, progress=False)
    assert s.task == 'captcha' and len(s) == 601 and s.items[0][0].shape == (50, 200)


def test_import_scheme2_needs_its_alphabet(scheme2):
    default = import_folder(scheme2, task='captcha', progress=False)
    assert default.problems.get('unknown_characters')  # h, k, r are not in the default alphabet
    own = import_folder(scheme2, task='captcha', alphabet='2345678abcdefghkmnprwxy', progress=False)
    assert len(own) == 1102 and 'unknown_characters' not in own.problems


def test_split_is_stable_when_files_are_added():
    names = [f'{i}.png' for i in range(500)]
    before = {n: split_of(n, seed=1) for n in names}
    after = {n: split_of(n, seed=1) for n in names + [f'new{i}.png' for i in range(500)]}
    assert all(after[n] == s for n, s in before.items())
    assert [split_of(n, seed=2) for n in names] != list(before.values())


def test_synth_items_balanced():
    labels = [l for _, l in synth_items(2000, seed=0, progress=False)]
    counts = np.array([labels.count(c) for c in ALPHABET])
    assert counts.min() > 0.6 * counts.mean()


def test_dvc_push_pull_round_trip(tmp_path):
    "A fresh repo tracks a data folder, pushes to a temporary local remote, loses the data and pulls it back."
    if not shutil.which('git'): pytest.skip('git not installed')
    repo, remote = tmp_path/'repo', tmp_path/'remote'
    repo.mkdir()
    env_run = lambda *a: run(*a, cwd=repo)
    env_run('git', 'init', '-q')
    dvc = BIN/'dvc'
    env_run(dvc, 'init', '-q')
    env_run(dvc, 'config', 'core.analytics', 'false')
    env_run(dvc, 'remote', 'add', '-d', 'tmp', remote)
    write_synth(repo/'data'/'synth', 20, progress=False)
    env_run(dvc, 'add', 'data')
    env_run(dvc, 'push')
    digest = {f.name: f.read_bytes() for f in image_files(repo/'data'/'synth')}
    shutil.rmtree(repo/'data'); shutil.rmtree(repo/'.dvc'/'cache')
    env_run(dvc, 'pull')
    assert {f.name: f.read_bytes() for f in image_files(repo/'data'/'synth')} == digest


def test_dvc_unreachable_remote_fails_clearly(tmp_path):
    repo = tmp_path/'repo'; repo.mkdir()
    run('git', 'init', '-q', cwd=repo)
    dvc = BIN/'dvc'
    run(dvc, 'init', '-q', cwd=repo)
    run(dvc, 'remote', 'add', '-d', 'gone', '/nonexistent/remote/path', cwd=repo)
    (repo/'data').mkdir(); (repo/'data'/'a.txt').write_text('x')
    run(dvc, 'add', 'data', cwd=repo)
    shutil.rmtree(repo/'data'); shutil.rmtree(repo/'.dvc'/'cache')
    r = run(dvc, 'pull', cwd=repo, check=False)
    assert r.returncode != 0 and ('missing' in (r.stderr + r.stdout).lower() or 'failed' in (r.stderr + r.stdout).lower())


def test_project_dvc_config_has_local_default_remote():
    cfg = (Path(__file__).parents[1]/'.dvc'/'config').read_text()
    assert 'remote = local' in cfg and 'analytics = false' in cfg
    assert os.path.exists(Path(__file__).parents[1]/'data.dvc')

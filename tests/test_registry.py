"The model registry end to end in a throwaway git repository with a local DVC remote: register two versions, promote, roll back, serve by reference. No network."
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from captcha_nb.testing import start_server, stop_server, tiny_onnx
from conftest import BIN, ROOT


def sh(*cmd, cwd, env=None, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and r.returncode: raise AssertionError(f'{cmd}: {r.stdout}\n{r.stderr}')
    return r


def registry(*args, cwd, env=None) -> dict:
    "captcha-registry's last line (JSON)"
    return json.loads(sh(BIN/'captcha-registry', *args, cwd=cwd, env={'WANDB_MODE': 'disabled', **(env or {})}).stdout.splitlines()[-1])


@pytest.fixture(scope='module')
def repo(tmp_path_factory):
    "A git repository with DVC, a local remote and the project's artifacts.yaml"
    d = tmp_path_factory.mktemp('registry')/'repo'; d.mkdir()
    for cmd in (['git', 'init', '-q'], ['git', 'config', 'user.email', 'ci@example.com'], ['git', 'config', 'user.name', 'ci'],
                [BIN/'dvc', 'init', '-q'], [BIN/'dvc', 'remote', 'add', '-d', 'local', d.parent/'remote']):
        sh(*cmd, cwd=d)
    shutil.copy(ROOT/'artifacts.yaml', d)
    sh('git', 'add', '-A', cwd=d); sh('git', 'commit', '-qm', 'init', cwd=d)
    return d


def a_run(dest, tiny_char_model, seed: int):
    "An exported run folder: the tiny model's metrics and reference, its own weights"
    shutil.copytree(tiny_char_model, dest, ignore=shutil.ignore_patterns('*.pkl', '*.ipynb', 'wandb', 'predictions*'))
    tiny_onnx(dest/'model.onnx', seed=seed)
    return dest


def served(url) -> dict:
    return requests.get(f'{url}/info').json()['model']['models']['/predict']


def test_life_of_a_model(repo, tiny_char_model, tmp_path):
    "register two versions, promote both in turn, ask which is in prod, serve it, roll back, serve the previous one"
    a, b = a_run(tmp_path/'a', tiny_char_model, 1), a_run(tmp_path/'b', tiny_char_model, 2)
    v1 = registry('register', 'char', a, cwd=repo, env={'WANDB_MODE': 'offline'})
    v2 = registry('register', 'char', b, cwd=repo)
    assert (v1['version'], v2['version']) == ('v0.0.1', 'v0.0.2') and v1['tag'] == 'char@v0.0.1'
    assert list((repo/'wandb').glob('offline-run-*/run-*.wandb')), 'the version was not logged to W&B (offline)'
    tracked = sh('git', 'ls-files', 'registry', cwd=repo).stdout.split()
    assert set(tracked) == {'registry/char.dvc', 'registry/char.json', 'registry/.gitignore'}, 'model files must live in DVC, not git'
    assert any((repo.parent/'remote').rglob('*')), 'the files were not pushed to the DVC remote'
    registry('promote', 'char', 'v0.0.1', 'prod', cwd=repo)
    registry('promote', 'char', 'v0.0.2', 'prod', cwd=repo)
    # "which model is in prod, from which run and data?" in one command
    out = sh(BIN/'captcha-registry', 'which', 'char', cwd=repo).stdout
    w = json.loads(out.splitlines()[-1])
    metrics = json.loads((b/'metrics.json').read_text())
    assert w['version'] == 'v0.0.2' and 'char v0.0.2 (prod)' in out
    assert w['card']['trained_commit'] == metrics['git_commit'] and w['card']['data_digest'] == metrics['data']['digest'] != ''
    # served by reference: the files come from DVC, /info and /metrics say which version runs
    shutil.rmtree(repo/'.dvc'/'cache')
    proc, url = start_server(['char#prod'], args=['--registry', repo, '--prediction-log', tmp_path/'p.jsonl'])
    try:
        m = served(url)
        assert m['model']['name'] == 'char' and m['model']['version'] == 'v0.0.2' and m['model']['stage'] == 'prod'
        assert m['model']['data_digest'] == metrics['data']['digest'] and open(m['file'], 'rb').read() == (b/'model.onnx').read_bytes()
        text = requests.get(f'{url}/metrics').text
        assert any(l.startswith('captcha_model_info{') and 'version="v0.0.2"' in l and l.endswith(' 1.0') for l in text.splitlines()), text[-2000:]
    finally: stop_server(proc)
    r = registry('rollback', 'char', 'prod', cwd=repo)
    assert (r['version'], r['rolled_back_from']) == ('v0.0.1', 'v0.0.2')
    proc, url = start_server(['char#prod'], args=['--registry', repo, '--prediction-log', tmp_path/'p.jsonl'])
    try: assert served(url)['model']['version'] == 'v0.0.1'
    finally: stop_server(proc)
    # GTO's own commands read the same tags
    hist = sh(BIN/'gto', 'history', 'char', cwd=repo).stdout
    assert 'char#prod#3' in hist and 'char@v0.0.2' in hist


def test_registry_refuses_clearly(repo, tmp_path):
    empty = tmp_path/'empty'; empty.mkdir()
    r = sh(BIN/'captcha-registry', 'register', 'char', empty, cwd=repo, check=False)
    assert r.returncode != 0 and 'lacks' in r.stderr and 'captcha-export' in r.stderr
    r = sh(BIN/'captcha-registry', 'register', 'My Model', empty, cwd=repo, check=False)
    assert r.returncode != 0 and 'lower-case' in r.stderr
    r = sh(BIN/'captcha-registry', 'rollback', 'nosuch', cwd=repo, check=False)
    assert r.returncode != 0 and 'captcha-registry rollback:' in r.stderr
    r = sh(BIN/'captcha-serve', '--model', 'char@v9.9.9', '--registry', repo, cwd=repo, check=False)
    assert r.returncode != 0 and 'no version v9.9.9' in r.stderr
    r = sh(BIN/'captcha-registry', 'which', 'char', cwd=tmp_path, check=False)
    assert r.returncode != 0 and 'not inside a git repository' in r.stderr


def test_export_logs_the_model_to_wandb(tiny_char_model, tmp_path):
    "captcha-export logs the exported files as a W&B model artifact when the run logged to W&B (offline here: wandb sync later)"
    run = tmp_path/'run'
    shutil.copytree(tiny_char_model, run, ignore=shutil.ignore_patterns('wandb', 'predictions*'))
    m = json.loads((run/'metrics.json').read_text()); m['params']['wandb_mode'] = 'offline'
    (run/'metrics.json').write_text(json.dumps(m))
    env = {k: v for k, v in os.environ.items() if k != 'WANDB_MODE'}
    r = subprocess.run([str(BIN/'captcha-export'), str(run), '--no-int8'], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out['wandb'] and list(Path(out['wandb']).glob('run-*.wandb')) and 'W&B (offline)' in r.stdout

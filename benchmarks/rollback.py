#!/usr/bin/env python
"""How long does rolling `prod` back take, server restart included? (issue 16's target: one command, under a minute)

    .venv/bin/python benchmarks/rollback.py [--old models/reader8] [--new models/reader]

In a throwaway git repository with a local DVC remote (as `make install` sets up for the project), two exported
runs are registered as versions of `reader` and promoted to prod in turn. Then, from a cold start (DVC cache and
fetched models deleted, so the files come from the remote as on a fresh machine), it times what `make rollback`
runs: `captcha-registry rollback reader prod`, then `captcha-serve --model reader#prod` until `/health` answers.
Also timed: `captcha-registry which reader#prod`, the one command that says which model is in prod and from
which run and data. Prints one JSON line.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))
from captcha_nb.testing import free_port, stop_server  # noqa: E402


def sh(*cmd, cwd):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env={**os.environ, 'WANDB_MODE': 'disabled'})
    if r.returncode: sys.exit(f'{cmd}: {r.stdout}\n{r.stderr}')
    return r.stdout


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + '/health', timeout=2) as r: return r.status == 200
    except OSError: return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--old', type=Path, default=ROOT/'models'/'reader8', help='exported run registered first (the version rolled back to)')
    p.add_argument('--new', type=Path, default=ROOT/'models'/'reader', help='exported run registered second')
    a = p.parse_args(argv)
    for d in (a.old, a.new):
        if not (d/'model.onnx').is_file(): sys.exit(f'{d} holds no exported model: run make run (or captcha-export) first, or pass --old/--new')
    work = Path(tempfile.mkdtemp(prefix='rollback_bench_'))
    repo = work/'repo'; repo.mkdir()
    try:
        for cmd in (['git', 'init', '-q'], ['git', 'config', 'user.email', 'bench@example.com'], ['git', 'config', 'user.name', 'bench'],
                    [BIN/'dvc', 'init', '-q'], [BIN/'dvc', 'remote', 'add', '-d', 'local', work/'remote']):
            sh(*cmd, cwd=repo)
        shutil.copy(ROOT/'artifacts.yaml', repo)
        sh('git', 'add', '-A', cwd=repo); sh('git', 'commit', '-qm', 'init', cwd=repo)
        t = time.perf_counter()
        for d in (a.old, a.new): sh(BIN/'captcha-registry', 'register', 'reader', d, cwd=repo)
        t_register = (time.perf_counter() - t) / 2
        for v in ('v0.0.1', 'v0.0.2'): sh(BIN/'captcha-registry', 'promote', 'reader', v, 'prod', cwd=repo)
        t = time.perf_counter(); which = sh(BIN/'captcha-registry', 'which', 'reader#prod', cwd=repo); t_which = time.perf_counter() - t
        shutil.rmtree(repo/'.dvc'/'cache', ignore_errors=True); shutil.rmtree(repo/'models', ignore_errors=True)  # cold: from the remote
        port = free_port(); url = f'http://127.0.0.1:{port}'
        t = time.perf_counter()
        sh(BIN/'captcha-registry', 'rollback', 'reader', 'prod', cwd=repo)
        t_rollback = time.perf_counter() - t
        log = open(work/'serve.log', 'w')
        proc = subprocess.Popen([BIN/'captcha-serve', '--model', 'reader#prod', '--port', str(port)], cwd=repo, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        while not healthy(url):
            if proc.poll() is not None or time.perf_counter() - t > 300: sys.exit(f'server did not start:\n{(work/"serve.log").read_text()[-2000:]}')
            time.sleep(0.1)
        t_total = time.perf_counter() - t
        info = json.loads(urllib.request.urlopen(url + '/info').read())['model']['models']['/solve']['model']
        stop_server(proc)
        print(which.splitlines()[0])
        print(json.dumps(dict(rollback_and_restart_s=round(t_total, 1), rollback_s=round(t_rollback, 1), register_s=round(t_register, 1),
                              which_s=round(t_which, 2), served_after=info['version'], model_mb=round((a.old/'model.onnx').stat().st_size / 2**20, 1),
                              cpu=os.cpu_count())))
    finally: shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()

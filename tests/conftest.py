"Shared fixtures: where the real data lives, temporary folders, the --runslow switch."
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent/'shared'/'data'
os.environ.setdefault('DVC_NO_ANALYTICS', '1')
os.environ.setdefault('WANDB_MODE', 'offline')


def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False, help='run tests marked slow')


# Training runs (papermill, captcha-train, the few-shot benchmark) take up to a minute each: run them first, so that
# with pytest-xdist no worker ends the session alone on one while the other has nothing left to do
LONG_FIRST = ('test_train.py', 'test_few_shot.py')


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)  # stable: file order otherwise
    if config.getoption('--runslow'): return
    skip = pytest.mark.skip(reason='slow: run with --runslow (or SLOW=1 tools/test.sh)')
    for item in items:
        if 'slow' in item.keywords: item.add_marker(skip)


def shared(name: str) -> Path:
    "A real data folder from ../shared/data, or skip the test with the reason"
    p = SHARED/name
    if not p.is_dir(): pytest.skip(f'real data not available: {p} is absent (CI provides ../shared/data)')
    return p


@pytest.fixture
def real_chars(): return shared('kaggle_chars')


@pytest.fixture
def real_captchas(): return shared('captcha_images_v2')


@pytest.fixture
def scheme2(): return shared('scheme2_captchas')


BIN = Path(__import__('sys').executable).parent


def train_tiny(out_dir: Path, task: str = 'char', seed: int = 42, extra=()) -> Path:
    "Run the papermill training notebook with tiny parameters into `out_dir`"
    import subprocess
    out_dir.mkdir(parents=True, exist_ok=True)
    params = ['-p', 'task', task, '-p', 'n_synth', '600' if task == 'char' else '160', '-p', 'epochs', '1',
              '-p', 'seed', str(seed), '-p', 'out_dir', str(out_dir), '-p', 'wandb_mode', 'disabled', *extra]
    r = subprocess.run([str(BIN/'papermill'), str(ROOT/'nbs'/'03_train.ipynb'), str(out_dir/'train.ipynb'),
                        '--no-progress-bar', *params], capture_output=True, text=True)
    if r.returncode: raise AssertionError(f'papermill failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}')
    return out_dir


def made_once(tmp_path_factory, name: str, make) -> Path:
    "`make(folder)` once per test session, however many pytest-xdist workers ask (the first one makes it, the others wait)"
    from filelock import FileLock
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'): root = root.parent  # shared by the workers of this session
    d, done = root/name, root/f'{name}.done'
    with FileLock(str(root/f'{name}.lock')):
        if not done.exists(): make(d); done.touch()
    return d


def train_and_export(d: Path, task: str, *export_args, extra=()) -> Path:
    import subprocess
    train_tiny(d, task=task, extra=extra)
    r = subprocess.run([str(BIN/'captcha-export'), str(d), *export_args], capture_output=True, text=True)
    if r.returncode: raise AssertionError(f'captcha-export failed:\n{r.stdout}\n{r.stderr}')
    return d


@pytest.fixture(scope='session')
def tiny_char_model(tmp_path_factory) -> Path:
    "A tiny character model trained by papermill, logged to an offline W&B run and exported (learner.pkl, model.onnx, model.int8.onnx)"
    return made_once(tmp_path_factory, 'tiny_char', lambda d: train_and_export(d, 'char', extra=['-p', 'wandb_mode', 'offline']))


@pytest.fixture(scope='session')
def char_folder(tmp_path_factory) -> Path:
    "40 labelled synthetic character crops on disk"
    from captcha_nb.data import write_synth
    return write_synth(tmp_path_factory.mktemp('chars')/'synth', 40, seed=7, progress=False)


@pytest.fixture(scope='session')
def tiny_captcha_model(tmp_path_factory) -> Path:
    "A tiny whole-CAPTCHA (CTC) model trained by papermill and exported"
    return made_once(tmp_path_factory, 'tiny_captcha', lambda d: train_and_export(d, 'captcha', '--no-int8'))


def write_captchas(folder: Path, n: int = 40, alphabet: str = '0123456789', lengths=(4, 6), seed: int = 3) -> Path:
    "`n` general-style CAPTCHAs of mixed sizes and lengths in `folder`, named after their labels (`<label>_<i>.png`)"
    from PIL import Image
    from captcha_nb.data import synth_items
    folder.mkdir(parents=True, exist_ok=True)
    for i, (a, label) in enumerate(synth_items(n, 'captcha', alphabet, lengths, seed=seed, style='general', progress=False)):
        Image.fromarray(a).save(folder/f'{label}_{i}.png')
    return folder

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


def pytest_collection_modifyitems(config, items):
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

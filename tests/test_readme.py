"Every command the README shows works as a newcomer types it: make targets exist, tools are where it says."
import re
import shlex
import subprocess

import tomllib

import pytest

from conftest import BIN, ROOT

README = (ROOT/'README.md').read_text()
SCRIPTS = set(tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['scripts'])
VENV_TOOLS = SCRIPTS | {'dvc', 'papermill', 'torchrun', 'jupyter', 'wandb'}  # typed without .venv/bin/ in the README


def commands() -> list[str]:
    "Shell commands in the README: lines of bash blocks and inline code spans that start with a command"
    blocks = [line.split('  #')[0].strip() for b in re.findall(r'```bash\n(.*?)```', README, re.S) for line in b.splitlines()]
    spans = re.findall(r'`([^`\n]+)`', re.sub(r'```.*?```', '', README, flags=re.S))
    cmds = [c for c in blocks + spans if c]
    return sorted({c for c in cmds if c.startswith(('make ', '.venv/bin/')) and len(c.split()) > 1 or c.split()[0] in VENV_TOOLS})


def test_readme_opens_with_the_two_setup_commands():
    first = re.search(r'```bash\n(.*?)```', README, re.S).group(1).splitlines()
    assert [line.split()[:2] for line in first] == [['make', 'run'], ['make', 'test']]


@pytest.mark.parametrize('cmd', [c for c in commands() if c.startswith('make ')])
def test_make_targets_exist(cmd):
    target = shlex.split(cmd)[1]
    r = subprocess.run(['make', '-n', target], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f'{cmd}: {r.stderr}'


@pytest.mark.parametrize('tool', sorted({c.split()[0] for c in commands() if not c.startswith('make ')}))
def test_tools_exist_where_the_readme_says(tool):
    path = ROOT/tool if tool.startswith('.venv/') else BIN/tool
    assert path.exists(), f'{tool}: {path} does not exist after make install'
    if not tool.startswith('.venv/'):
        assert 'source .venv/bin/activate' in README, f'{tool} is typed without .venv/bin/: the README must say to activate the venv'
    if path.name in SCRIPTS:
        r = subprocess.run([str(path), '--help'], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and 'usage' in r.stdout.lower(), f'{tool} --help: {r.stderr[-500:]}'


@pytest.mark.parametrize('cmd', [c for c in commands() if c.startswith('.venv/bin/python ')])
def test_scripts_exist(cmd):
    assert (ROOT/cmd.split()[1]).is_file(), f'{cmd}: no such script'

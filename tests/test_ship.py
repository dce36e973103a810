"""The shipping files (GitHub workflows, Dockerfiles, Kubernetes and Cloud Run manifests, pre-commit, scripts) say what they must.

Static checks only: no network, no Docker, no cluster. hadolint and shellcheck run when they are on PATH."""
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT/'.github'/'workflows'
DOCKER = ROOT/'docker'
K8S = ROOT/'deploy'/'k8s'
CLOUDRUN = ROOT/'deploy'/'cloudrun'/'service.yaml'
SHELL_SCRIPTS = sorted([*(ROOT/'scripts').glob('*.sh'), *DOCKER.glob('*.sh'), ROOT/'.ci'/'run', *(ROOT/'tools').glob('*.sh'),
                        *(ROOT/'benchmarks').glob('*.sh')])
HEAVY = ('torch', 'torchvision', 'fastai', 'timm')


# ---------------------------------------------------------------- helpers
def load_yaml(path: Path): return yaml.safe_load(path.read_text())

def workflow(name: str) -> dict: return load_yaml(WORKFLOWS/name)

def triggers(wf: dict) -> dict:
    "The `on:` mapping (YAML 1.1 reads the bare key `on` as True)"
    on = wf.get('on', wf.get(True))
    return {on: None} if isinstance(on, str) else {k: None for k in on} if isinstance(on, list) else on

def steps(wf: dict) -> list[dict]: return [s for job in wf['jobs'].values() for s in job.get('steps', [])]

def runs(wf: dict) -> str: return '\n'.join(s.get('run', '') for s in steps(wf))

def uses(wf: dict, action: str) -> list[dict]: return [s for s in steps(wf) if s.get('uses', '').split('@')[0] == action]

def docker_instructions(path: Path) -> list[tuple[str, str]]:
    "(INSTRUCTION, arguments) of a Dockerfile, comments dropped and continuation lines joined"
    out, cur = [], ''
    for line in path.read_text().splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith('#')): continue
        if line.lstrip().startswith('#'): continue  # a comment inside a continued instruction
        cur += line.rstrip()
        if cur.endswith('\\'): cur = cur[:-1] + ' '; continue
        instr, _, args = cur.strip().partition(' ')
        out.append((instr.upper(), ' '.join(args.split()))); cur = ''
    return out

def workflow_commands(name: str = '*.y*ml') -> list[tuple[str, list[str]]]:
    "(file, tokens) of each simple command in the workflows' `run:` scripts (lines, &&, ||, ;, | and `$(` split them)"
    out = []
    for f in sorted(WORKFLOWS.glob(name)):
        for part in re.split(r'\n|&&|\|\||;|\||\$\(', runs(load_yaml(f)).replace('\\\n', ' ')):
            try: toks = shlex.split(part, comments=True)
            except ValueError: continue  # a piece of a quoted string that spans the split
            if toks: out.append((f.name, toks))
    return out

def instr(path: Path, name: str) -> list[str]: return [a for i, a in docker_instructions(path) if i == name]

def pip_installs(path: Path) -> list[list[str]]:
    "Argument lists of every `pip install` in the Dockerfile's RUN instructions"
    res = []
    for run in instr(path, 'RUN'):
        for cmd in run.split('&&'):
            toks = shlex.split(cmd)
            if 'pip' in toks and 'install' in toks: res.append(toks[toks.index('install') + 1:])
    return res

def k8s_docs(path: Path) -> list[dict]: return [d for d in yaml.safe_load_all(path.read_text()) if d]

def k8s(kind: str) -> dict:
    docs = [d for p in sorted(K8S.glob('*.yaml')) for d in k8s_docs(p) if d.get('kind') == kind]
    assert len(docs) == 1, f'expected one {kind} in deploy/k8s, found {len(docs)}'
    return docs[0]

def serve_uid() -> str:
    "The uid the serve image runs as (its `useradd --uid`)"
    m = re.search(r'useradd\b[^&]*--uid (\d+)', ' '.join(instr(DOCKER/'serve.Dockerfile', 'RUN')))
    assert m, 'serve.Dockerfile creates no user with a fixed uid'
    return m.group(1)


# ---------------------------------------------------------------- workflows
def test_every_workflow_parses_and_pins_its_actions():
    files = sorted(WORKFLOWS.glob('*.y*ml'))
    assert {f.name for f in files} >= {'test.yaml', 'deploy.yaml', 'docker.yaml', 'train.yaml', 'registry.yaml'}
    for f in files:
        wf = load_yaml(f)
        assert wf.get('name') and triggers(wf) and wf.get('jobs'), f'{f.name}: needs name, on and jobs'
        for job_name, job in wf['jobs'].items():
            assert job.get('runs-on'), f'{f.name}:{job_name} has no runs-on'
            for s in job['steps']:
                assert ('uses' in s) != ('run' in s), f'{f.name}:{job_name}: a step needs exactly one of uses/run: {s}'
                if 'uses' in s: assert re.search(r'@v\d+', s['uses']), f'{f.name}: unpinned action {s["uses"]}'


def test_test_workflow_runs_the_readme_command_on_311_and_312():
    wf = workflow('test.yaml')
    assert {'push', 'pull_request'} <= set(triggers(wf))
    job = wf['jobs']['test']
    assert [str(v) for v in job['strategy']['matrix']['python-version']] == ['3.11', '3.12']
    assert 'make test' in (ROOT/'README.md').read_text() and re.search(r'^test:', (ROOT/'Makefile').read_text(), re.M)
    assert re.search(r'^\s*make test\s*$', runs(wf), re.M), 'test.yaml must run `make test`, the README test command'
    sp, = uses(wf, 'actions/setup-python')
    assert sp['with']['python-version'] == '${{ matrix.python-version }}' and sp['with']['cache'] == 'pip'
    assert set(sp['with']['cache-dependency-path'].split()) == {'constraints.txt', 'pyproject.toml'}
    assert job['env']['PIP_EXTRA_INDEX_URL'] == 'https://download.pytorch.org/whl/cpu'
    for pkg in ('chromium', 'chromium-driver', 'wrk'): assert re.search(rf'apt-get install .*\b{pkg}\b', runs(wf)), pkg
    up, = uses(wf, 'actions/upload-artifact')
    assert up['with']['path'] == 'artifacts/screenshots' and up['if'] == 'always()'


def test_deploy_workflow_publishes_the_site_with_its_figures():
    wf = workflow('deploy.yaml')
    assert triggers(wf)['push']['branches'] == ['main']
    assert wf['permissions']['pages'] == 'write' and wf['permissions']['id-token'] == 'write'
    assert uses(wf, 'quarto-dev/quarto-actions/setup') and uses(wf, 'actions/deploy-pages')
    assert ['tools/docs.sh', '--render'] in [t for _, t in workflow_commands('deploy.yaml')], 'the site is rendered from a run'
    up, = uses(wf, 'actions/upload-pages-artifact')
    assert up['with']['path'] == '_docs' == tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['nbdev']['doc_path']


def test_docker_workflow_builds_both_images_and_pushes_only_tags():
    wf = workflow('docker.yaml')
    on = triggers(wf)
    assert 'pull_request' in on and 'v*' in on['push']['tags']
    job, = wf['jobs'].values()
    images = job['strategy']['matrix']['image']
    builds = uses(wf, 'docker/build-push-action')
    files = {b['with']['file'].replace('${{ matrix.image }}', i) for b in builds for i in images}
    assert files == {'docker/train.Dockerfile', 'docker/serve.Dockerfile'}
    for f in files: assert (ROOT/f).is_file()
    assert all(b['with']['context'] == '.' for b in builds)
    for b in builds:
        pushes = str(b['with'].get('push', False)).lower() != 'false'
        if pushes: assert "startsWith(github.ref, 'refs/tags/v')" in job['env']['PUSH'] and b['if'] == "env.PUSH == 'true'"
    assert any(str(b['with'].get('push')).lower() != 'false' for b in builds), 'nothing is ever pushed'
    login, = uses(wf, 'docker/login-action')
    assert login['with']['registry'] == 'ghcr.io' and login['if'] == "env.PUSH == 'true'"
    meta, = uses(wf, 'docker/metadata-action')
    assert meta['with']['images'] == 'ghcr.io/${{ github.repository }}-${{ matrix.image }}' and set(images) == {'train', 'serve'}


def test_train_workflow():
    wf = workflow('train.yaml')
    on = triggers(wf)
    assert 'workflow_dispatch' in on
    for event in ('push', 'pull_request'): assert set(on[event]['paths']) == {'data.dvc', 'nbs/03_train.ipynb', 'params.yaml'}
    by_name = {s.get('name', ''): s for s in steps(wf)}
    pull = next(s for s in by_name.values() if 'dvc pull' in s.get('run', ''))
    synth = next(s for s in by_name.values() if 'make data' in s.get('run', '') and 'dvc pull' not in s['run'])
    assert pull['if'] == "env.DVC_REMOTE_URL != ''" and synth['if'] == "env.DVC_REMOTE_URL == ''"
    assert 'dvc remote add' in pull['run'] and 'N_SYNTH=2000' in synth['run']
    assert wf['jobs']['train']['env']['DVC_REMOTE_URL'] == '${{ secrets.DVC_REMOTE_URL }}'
    pm, = [t for _, t in workflow_commands('train.yaml') if t[0] == 'papermill']
    assert pm[1:3] == ['nbs/03_train.ipynb', 'runs/ci/train.ipynb'] and params(pm) == dict(
        synth_dirs='data/synth/char', n_synth='0', epochs='1', out_dir='runs/ci', wandb_mode='offline')
    up, = uses(wf, 'actions/upload-artifact')
    assert up['with']['path'].split()[0] == 'runs/ci' and up['if'] == 'always()'


def test_registry_workflow_acts_on_gto_tags():
    "A new version is scored, prod is shipped as an image; no more path triggers on models/**"
    wf = workflow('registry.yaml')
    on = triggers(wf)
    assert set(on) == {'push', 'workflow_dispatch'} and set(on['push']['tags']) == {'*@*', '*#*'} and 'paths' not in on['push']
    cmds = [t for _, t in workflow_commands('registry.yaml')]
    first = {t[0] + (' ' + t[1] if t[0] == 'captcha-registry' else ''): t for t in cmds}
    assert {'captcha-registry tag', 'captcha-registry fetch', 'captcha-data', 'captcha-eval'} <= set(first)
    assert '--remote-url' in first['captcha-registry fetch'] and first['captcha-eval'][1] == 'model/model.onnx'
    script = runs(wf)
    assert '$GITHUB_STEP_SUMMARY' in script and 'docker/model.Dockerfile' in script and 'docker push' in script
    ship = next(s for s in steps(wf) if 'docker push' in s.get('run', ''))
    assert "steps.tag.outputs.stage == 'prod'" in ship['if'] and "outputs.event == 'assignment'" in ship['if']
    install = next(s['run'] for s in steps(wf) if 'pip install' in s.get('run', ''))
    assert '[train]' not in install and '[dev]' not in install, 'scoring ONNX needs no torch'
    assert not any('model-check' in f.name for f in WORKFLOWS.iterdir())


def test_registry_tags_are_read_as_the_workflow_expects():
    "What the workflow's first step prints for each kind of GTO tag, the hand-given NAME#STAGE included"
    out = lambda tag: json.loads(subprocess.run([str(ROOT/'.venv'/'bin'/'captcha-registry'), 'tag', tag], capture_output=True,
                                                text=True, check=True).stdout.splitlines()[-1])
    assert out('reader@v0.0.3') == dict(name='reader', event='registration', version='v0.0.3', ref='reader@v0.0.3')
    assert out('reader#prod#4') == dict(name='reader', event='assignment', stage='prod', ref='reader#prod')
    assert out('reader#prod#0')['ref'] == 'reader#prod'


def params(tokens: list[str]) -> dict:
    "papermill's `-p name value` pairs"
    return {tokens[i + 1]: tokens[i + 2] for i, t in enumerate(tokens) if t == '-p'}


def test_every_command_the_workflows_run_exists_here():
    "make targets, scripts, console commands and their options, notebook parameters: what a workflow runs must work"
    from captcha_nb.train import TrainConfig
    targets = set(re.findall(r'^([a-z][\w-]*):', (ROOT/'Makefile').read_text(), re.M))
    scripts = set(tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['scripts'])
    fields = set(TrainConfig.__dataclass_fields__)
    helps = {}
    for f, t in workflow_commands():
        where = f'{f}: {shlex.join(t)}'
        if t[0] == 'make': assert all(a in targets for a in t[1:] if '=' not in a and not a.startswith('-')), where
        elif re.match(r'(\./)?(tools|scripts|benchmarks|\.ci|docker)/', t[0]):
            assert (ROOT/t[0]).is_file() and (ROOT/t[0]).stat().st_mode & 0o111, f'{where}: not an executable script here'
        elif t[0] == 'papermill':
            assert (ROOT/t[1]).is_file() and set(params(t)) <= fields, f'{where}: no such notebook or parameter'
        elif t[0] in scripts:
            cmd = t[:2] if len(t) > 1 and not t[1].startswith(('-', '$', '"')) and t[0] in ('captcha-data', 'captcha-registry') else t[:1]
            key = tuple(cmd)
            if key not in helps: helps[key] = subprocess.run([str(ROOT/'.venv'/'bin'/cmd[0]), *cmd[1:], '--help'],
                                                             capture_output=True, text=True, timeout=120).stdout
            for opt in (a.split('=')[0] for a in t if a.startswith('--')): assert opt in helps[key], f'{where}: {opt} is no option'


# ---------------------------------------------------------------- Dockerfiles
def test_serve_image_has_no_torch():
    path = DOCKER/'serve.Dockerfile'
    assert instr(path, 'FROM') == ['python:3.11-slim']
    installs = pip_installs(path)
    assert installs, 'serve.Dockerfile installs nothing with pip'
    for args in installs:
        assert not any('[' in a or a.split('==')[0] in HEAVY for a in args), f'serve image installs extras or torch: {args}'
        assert '-c' in args and args[args.index('-c') + 1] == 'constraints.txt'
    deps = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['dependencies']
    heavy = [d for d in deps if re.split(r'[<>=!~\[; ]', d)[0].lower() in HEAVY]
    assert not heavy, f'base dependencies pull {heavy} into the serving image'


def test_serve_image_runs_captcha_serve_as_non_root_with_healthcheck():
    path = DOCKER/'serve.Dockerfile'
    user, = instr(path, 'USER')
    assert user not in ('root', '0') and not user.startswith('0:')
    assert instr(path, 'EXPOSE') == ['8000']
    hc, = instr(path, 'HEALTHCHECK')
    assert 'http://127.0.0.1:8000/health' in hc and 'urllib' in hc and 'curl' not in hc
    cmd = yaml.safe_load(instr(path, 'CMD')[-1])  # the exec form is a JSON array, which YAML reads too
    assert cmd[:3] == ['captcha-serve', '--model', '/models/model.onnx']
    assert cmd[cmd.index('--host') + 1] == '0.0.0.0' and cmd[cmd.index('--port') + 1] == '8000'
    assert Path(cmd[cmd.index('--prediction-log') + 1]).parent == Path('/data')
    assert any('/data' in v for v in instr(path, 'VOLUME'))
    assert 'chown captcha:captcha /data' in ' '.join(instr(path, 'RUN'))


def test_train_image_runs_the_papermill_notebook_into_out():
    path = DOCKER/'train.Dockerfile'
    assert instr(path, 'FROM') == ['python:3.11-slim']
    run = ' '.join(instr(path, 'RUN'))
    assert re.search(r'apt-get install -y --no-install-recommends make git', run) and 'rm -rf /var/lib/apt/lists' in run
    pkg = [a for a in pip_installs(path) if '-e' in a]
    assert pkg and pkg[0][-1] == '.[train]' and 'https://download.pytorch.org/whl/cpu' in pkg[0]
    assert pkg[0][pkg[0].index('-c') + 1] == 'constraints.txt'
    assert 'ipykernel install' in run and '--name python3' in run
    entry = yaml.safe_load(instr(path, 'ENTRYPOINT')[-1])
    script = DOCKER/Path(entry[0]).name
    assert entry == ['/app/docker/train-entrypoint.sh'] and script.is_file()
    text = script.read_text()
    assert re.search(r'papermill nbs/03_train\.ipynb "\$out/train\.ipynb" --log-output', text)
    assert '-p out_dir "$out"' in text and '"$@"' in text and 'OUT_DIR:-/out' in text
    assert instr(path, 'USER')[-1] not in ('root', '0') and 'chown captcha:captcha /out' in run


def test_train_entrypoint_help_and_docker_context():
    r = subprocess.run(['bash', str(DOCKER/'train-entrypoint.sh'), '--help'], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and 'papermill' in r.stdout
    assert (DOCKER/'train-entrypoint.sh').stat().st_mode & 0o111, 'the entry point must be executable'
    ignored = {ln.strip() for ln in (ROOT/'.dockerignore').read_text().splitlines() if ln.strip() and not ln.startswith('#')}
    assert {'.venv', 'data', 'models', 'runs', 'artifacts', '_proc', '_docs', '.git', 'wandb', '.dvc/cache', '.dvc-remote'} <= ignored
    needed = {'nbs', 'docker', 'captcha_nb', 'pyproject.toml', 'constraints.txt', 'README.md'}
    assert not needed & ignored, f'.dockerignore drops what the images need: {needed & ignored}'
    for f in ('pyproject.toml', 'constraints.txt', 'README.md', 'nbs/03_train.ipynb'): assert (ROOT/f).is_file()


@pytest.mark.skipif(not shutil.which('hadolint'), reason='hadolint not on PATH (make install puts it in .venv/bin)')
def test_hadolint():
    r = subprocess.run(['hadolint', *map(str, sorted(DOCKER.glob('*.Dockerfile')))], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- Kubernetes and Cloud Run
def container(pod_spec: dict) -> dict:
    c, = pod_spec['containers']
    return c

def test_k8s_deployment_probes_resources_and_security():
    dep = k8s('Deployment')
    assert dep['apiVersion'] == 'apps/v1'
    tpl = dep['spec']['template']
    assert dep['spec']['selector']['matchLabels'].items() <= tpl['metadata']['labels'].items()
    c = container(tpl['spec'])
    assert c['image'].rsplit(':', 1)[0].endswith('-serve')
    port, = c['ports']
    assert port['containerPort'] == 8000
    assert {'readinessProbe', 'livenessProbe'} <= set(c)
    for probe in ('startupProbe', 'readinessProbe', 'livenessProbe'):
        if probe not in c: continue
        get = c[probe]['httpGet']
        assert get['path'] == '/health' and get['port'] in (8000, port.get('name'))
        assert c[probe]['periodSeconds'] > 0
    assert c['livenessProbe']['initialDelaySeconds'] >= c['readinessProbe']['initialDelaySeconds']
    assert c['resources'] == {'requests': {'cpu': '1', 'memory': '1Gi'}, 'limits': {'cpu': '2', 'memory': '2Gi'}}
    args = c['args']
    assert args[args.index('--model') + 1] == '/models/model.onnx' and args[args.index('--port') + 1] == '8000'
    log = Path(args[args.index('--prediction-log') + 1])
    pod_sc, sc = tpl['spec']['securityContext'], c['securityContext']
    assert pod_sc['runAsNonRoot'] is True and str(pod_sc['runAsUser']) == serve_uid()
    assert sc['readOnlyRootFilesystem'] is True and sc['allowPrivilegeEscalation'] is False
    mounts = {m['mountPath']: m for m in c['volumeMounts']}
    volumes = {v['name']: v for v in tpl['spec']['volumes']}
    for writable in ('/tmp', str(log.parent)):  # Prometheus multiprocess files, prediction log
        m = mounts[writable]
        assert not m.get('readOnly') and ('emptyDir' in volumes[m['name']] or 'persistentVolumeClaim' in volumes[m['name']])
    models = volumes[mounts['/models']['name']]
    assert 'persistentVolumeClaim' in models or tpl['spec'].get('initContainers')
    ann = tpl['metadata']['annotations']
    assert ann['prometheus.io/scrape'] == 'true' and ann['prometheus.io/port'] == '8000' and ann['prometheus.io/path'] == '/metrics'


def test_k8s_service_hpa_and_kustomization():
    dep, svc, hpa = k8s('Deployment'), k8s('Service'), k8s('HorizontalPodAutoscaler')
    assert svc['spec']['type'] == 'ClusterIP'
    p, = svc['spec']['ports']
    c = container(dep['spec']['template']['spec'])
    target = {x['name']: x['containerPort'] for x in c['ports']}.get(p['targetPort'], p['targetPort'])
    assert p['port'] == 80 and target == 8000
    assert svc['spec']['selector'].items() <= dep['spec']['template']['metadata']['labels'].items()
    assert hpa['apiVersion'] == 'autoscaling/v2' and hpa['spec']['scaleTargetRef']['name'] == dep['metadata']['name']
    assert (hpa['spec']['minReplicas'], hpa['spec']['maxReplicas']) == (1, 5)
    m, = hpa['spec']['metrics']
    assert m['resource']['name'] == 'cpu' and m['resource']['target'] == {'type': 'Utilization', 'averageUtilization': 70}
    kust = load_yaml(K8S/'kustomization.yaml')
    listed = set(kust['resources'])
    assert listed == {p.name for p in K8S.glob('*.yaml')} - {'kustomization.yaml'}
    assert {'deployment.yaml', 'service.yaml', 'hpa.yaml'} <= listed
    pvcs = {d['metadata']['name'] for d in k8s_docs(K8S/'pvc.yaml')} if (K8S/'pvc.yaml').exists() else set()
    claims = {v['persistentVolumeClaim']['claimName'] for v in dep['spec']['template']['spec']['volumes'] if 'persistentVolumeClaim' in v}
    assert claims <= pvcs, f'claims without a PersistentVolumeClaim manifest: {claims - pvcs}'


def test_k8s_image_is_the_one_the_docker_workflow_pushes():
    repo_url = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['urls']['Repository']
    repo = repo_url.split('github.com/')[1].strip('/').lower()
    image = container(k8s('Deployment')['spec']['template']['spec'])['image']
    assert image.rsplit(':', 1)[0] == f'ghcr.io/{repo}-serve'


def test_cloud_run_service():
    svc = load_yaml(CLOUDRUN)
    assert svc['apiVersion'] == 'serving.knative.dev/v1' and svc['kind'] == 'Service'
    tpl = svc['spec']['template']
    ann = tpl['metadata']['annotations']
    assert int(ann['autoscaling.knative.dev/maxScale']) >= 1 and 'autoscaling.knative.dev/minScale' in ann
    assert tpl['spec']['containerConcurrency'] == 32
    c = container(tpl['spec'])
    port, = c['ports']
    assert port['containerPort'] == 8000
    for probe in ('startupProbe', 'livenessProbe'): assert c[probe]['httpGet']['path'] == '/health'
    assert set(c['resources']['limits']) == {'cpu', 'memory'}
    assert c['args'][c['args'].index('--model') + 1] == '/models/model.onnx'


# ---------------------------------------------------------------- pre-commit and shell scripts
def test_pre_commit_config():
    path = ROOT/'.pre-commit-config.yaml'
    hooks = {h['id']: h for repo in load_yaml(path)['repos'] for h in repo['hooks']}
    clean = hooks['nbdev-clean']
    assert 'nbdev-clean' in clean['entry'] and clean['pass_filenames'] is False and re.search(clean['files'], 'nbs/00_core.ipynb')
    assert any('ruff' in h for h in hooks)
    if subprocess.run([sys.executable, '-c', 'import pre_commit'], capture_output=True).returncode: pytest.skip('pre-commit not installed')
    r = subprocess.run([sys.executable, '-m', 'pre_commit', 'validate-config', str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize('script', SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_parse(script):
    assert script.read_text().startswith('#!'), f'{script} has no shebang'
    r = subprocess.run(['bash', '-n', str(script)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not shutil.which('shellcheck'), reason='shellcheck not on PATH (apt-get install shellcheck)')
def test_shellcheck_new_scripts():
    scripts = [*(ROOT/'scripts').glob('*.sh'), *DOCKER.glob('*.sh'), ROOT/'.ci'/'run']
    r = subprocess.run(['shellcheck', *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout


def test_vm_train_usage():
    script = ROOT/'scripts'/'vm_train.sh'
    assert script.stat().st_mode & 0o111, 'scripts/vm_train.sh must be executable'
    text = script.read_text()
    assert 'set -euo pipefail' in text and 'dvc pull' in text and 'dvc push' in text and 'captcha-export' in text
    ok = subprocess.run(['bash', str(script), '-h'], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.startswith('Usage: scripts/vm_train.sh')
    bad = subprocess.run(['bash', str(script), '-z'], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and 'unknown option -z' in bad.stderr and 'Usage:' in bad.stderr


# ---------------------------------------------------------------- the serving modules need no torch
def test_offline_drift_needs_no_server():
    "captcha-drift reads a JSON-lines file: it must not import the HTTP stack"
    code = ("import sys; import captcha_nb.monitor; bad=[m for m in sys.modules if m.split('.')[0] in ('litserve','uvicorn','torch')]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]


def test_serving_modules_import_without_torch():
    code = ("import sys; import captcha_nb.app, captcha_nb.serve, captcha_nb.monitor, captcha_nb.page, captcha_nb.predlog; "
            "bad=[m for m in sys.modules if m.split('.')[0] in ('torch','fastai','timm')]; assert not bad, bad")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]

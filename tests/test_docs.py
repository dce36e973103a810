"The docs site is built from a run of the notebooks: tools/docs.sh leaves the data page with its figures in _proc/."
import json
import subprocess

from conftest import ROOT


def test_docs_pages_carry_their_figures():
    r = subprocess.run([ROOT/'tools'/'docs.sh', '--file-glob', '01_data.ipynb'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "{'01_data':" in r.stdout  # the check ran on the page
    nb = json.loads((ROOT/'_proc'/'01_data.ipynb').read_text())
    figures = [o for c in nb['cells'] for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]
    assert len(figures) >= 3, f'{len(figures)} figures on the processed data page'
    assert not any(c.get('outputs') for c in json.loads((ROOT/'nbs'/'01_data.ipynb').read_text())['cells']), \
        'the committed notebook stays without outputs'

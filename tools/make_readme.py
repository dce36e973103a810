#!/usr/bin/env python
"""README.md from nbs/index.ipynb (nbdev's own `nbdev-readme` needs Quarto, which cannot be installed here).

Markdown cells are copied as they are (image links re-pointed from nbs/ to the root); code cells are shown as Python blocks with their text outputs,
unless marked `#| hide`. `--check` exits 1 when README.md is not what index.ipynb gives (used by tools/test.sh)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = '<!-- Generated from nbs/index.ipynb by tools/make_readme.py (make readme). Edit the notebook, not this file. -->\n\n'


def cell_md(cell) -> str:
    src = ''.join(cell['source'])
    if cell['cell_type'] == 'markdown': return src.replace('](images/', '](nbs/images/')  # README.md sits one folder up
    if cell['cell_type'] != 'code': return ''
    lines = src.splitlines()
    directives = [line for line in lines if line.startswith('#|')]
    if any('hide' in d for d in directives): return ''
    code = '\n'.join(line for line in lines if not line.startswith('#|')).strip()
    out = []
    for o in cell.get('outputs', []):
        text = o.get('text') or o.get('data', {}).get('text/plain')
        if text: out.append(''.join(text).rstrip())
    md = f'```python\n{code}\n```' if code else ''
    return md + (f'\n\n```\n{chr(10).join(out)}\n```' if out else '')


def render() -> str:
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    parts = [p for p in (cell_md(c).strip() for c in nb['cells']) if p]
    return HEADER + '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run `make readme` and commit')
        print('README.md matches nbs/index.ipynb')
    else:
        readme.write_text(text)
        print(f'wrote {readme}')

#!/usr/bin/env python
"""The README's few-shot table from `benchmarks/few_shot.py` runs.

    .venv/bin/python benchmarks/few_shot_table.py runs/few_shot/captcha_images_v2 runs/few_shot/receita ...

One row per scheme: test images, ddddocr's best configuration, the general reader with the alphabet hint
(no labels), and each fine-tuned point (from the general reader; from random weights when `--scratch` ran).
"""
import json
import sys
from pathlib import Path


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder/'results.jsonl').read_text().splitlines() if line.strip()]


def pick(rs, reader: str, n: int):
    return next((r['seq_acc'] for r in rs if r['reader'] == reader and r['n'] == n), None)


def pct(x) -> str: return '' if x is None else f'{100 * x:.1f} %'


def table(folders) -> str:
    runs = {Path(f).name: rows(Path(f)) for f in folders}
    ns = sorted({r['n'] for rs in runs.values() for r in rs if r['n']})
    head = ['scheme', 'test images', 'ddddocr (best of 4)', 'general reader, no labels']
    head += [f'{n} labels' for n in ns] + [f'{n} labels, from scratch' for n in ns
                                           if any(r['reader'] == 'captcha_nb from scratch' and r['n'] == n for rs in runs.values() for r in rs)]
    out = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, rs in runs.items():
        dd = max((r for r in rs if r['reader'] == 'ddddocr'), key=lambda r: r['seq_acc'], default=None)
        zero = next((r for r in rs if r['reader'] == 'general reader'), None)
        cells = [f'`{name}`', str(rs[0]['n_test']), pct(dd and dd['seq_acc']), pct(zero and zero['seq_acc'])]
        cells += [pct(pick(rs, 'captcha_nb', n)) for n in ns]
        cells += [pct(pick(rs, 'captcha_nb from scratch', n)) for n in ns if len(head) > 4 + len(ns)]
        out.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)


if __name__ == '__main__':
    if len(sys.argv) < 2: raise SystemExit(__doc__)
    print(table(sys.argv[1:]))

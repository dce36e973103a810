#!/usr/bin/env python
"""A grid of papermill training runs and a table that compares them.

    .venv/bin/python benchmarks/sweep.py OUT_DIR -g lr=0.001,0.003 -g epochs=3,5 -p n_synth=8000 [-p eval_dirs=...]
    .venv/bin/python benchmarks/sweep.py OUT_DIR --table     # only (re)print the table of finished runs

Each combination of the -g values runs nbs/03_train.ipynb into OUT_DIR/<name>/ (skipped when its
metrics.json exists, so an interrupted sweep resumes). The table (also OUT_DIR/sweep.csv) has the varied
parameters, final valid loss and accuracy, test scores, eval scores and training time, best first by
validation metric: choose on validation, never on the test split or eval folders.
"""
import argparse
import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kv(s):
    k, _, v = s.partition('=')
    if not k or not _: raise argparse.ArgumentTypeError(f'expected NAME=VALUE, got {s!r}')
    return k, v


def table(out: Path) -> list[dict]:
    rows = []
    for m in sorted(out.glob('*/metrics.json')):
        d = json.loads(m.read_text())
        last = d['history'][-1] if d['history'] else {}
        metric = next((k for k in ('accuracy', 'seq_acc') if k in last), None)
        row = dict(run=m.parent.name, **{k: d['params'].get(k) for k in json.loads((m.parent/'grid.json').read_text())},
                   valid_loss=last.get('valid_loss'), valid_metric=last.get(metric), test_char_acc=d['test'].get('char_acc'),
                   test_seq_acc=d['test'].get('seq_acc'), train_s=d['timings']['train_s'])
        for path, s in d.get('eval', {}).items(): row[f'eval:{Path(path).name}'] = s['char_acc']
        rows.append(row)
    rows.sort(key=lambda r: -(r['valid_metric'] or 0))
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(out/'sweep.csv', 'w', newline='') as f:
            w = csv.DictWriter(f, keys); w.writeheader(); w.writerows(rows)
        print(' | '.join(keys))
        for r in rows: print(' | '.join(str(r.get(k, '')) for k in keys))
    return rows


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('-g', '--grid', type=kv, action='append', default=[], help='NAME=V1,V2,... (varied)')
    ap.add_argument('-p', '--param', type=kv, action='append', default=[], help='NAME=VALUE (fixed)')
    ap.add_argument('--table', action='store_true', help='only print the table')
    a = ap.parse_args()
    out = Path(a.out).resolve(); out.mkdir(parents=True, exist_ok=True)
    if not a.table:
        names, values = [k for k, _ in a.grid], [v.split(',') for _, v in a.grid]
        for combo in itertools.product(*values):
            name = '-'.join(f'{k}{v}' for k, v in zip(names, combo)) or 'run'
            d = out/name
            if (d/'metrics.json').exists(): print(f'{name}: done already'); continue
            d.mkdir(exist_ok=True); (d/'grid.json').write_text(json.dumps(names))
            params = [x for k, v in [*a.param, *zip(names, combo)] for x in ('-p', k, v)]
            print(f'{name}: training', flush=True)
            r = subprocess.run([str(Path(sys.executable).parent/'papermill'), str(ROOT/'nbs'/'03_train.ipynb'), str(d/'train.ipynb'),
                                '--no-progress-bar', *params, '-p', 'out_dir', str(d)])
            if r.returncode: print(f'{name}: failed ({r.returncode}), see {d}/train.ipynb')
    if not table(out): sys.exit(f'no finished runs in {out}')

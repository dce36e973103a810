#!/usr/bin/env python
"""How many labels does a scheme need? A learning curve against the pretrained peer, ddddocr.

    .venv/bin/python benchmarks/few_shot.py DIR [--n 50,100,200,400] [--minutes 10] [--reader models/reader] [--out runs/few_shot/NAME]

DIR is a folder of labelled whole CAPTCHAs (file name = label). It is split once, by a hash of each label
(so repeats of a label, `0074.png` and `0074_2.png`, never straddle the split): 30 % is the test part,
scored by every reader below and never trained on; the rest is the pool the training images come from.
`--scratch` also trains each point from random weights, to show what starting from the reader is worth.
For each N, the first N images of the pool (a fixed shuffle, so the sets are nested) train a reader with
the command a user runs, `captcha-train --real-dirs TRAIN --init-from READER --minutes M --out-dir ...`,
which is exported (`captcha-export`) and scored (`captcha-eval`) on the test part. Also scored on the same
images: the general reader with no labels (alphabet hint only: `captcha-eval --alphabet`), and ddddocr,
the best of its two models with and without its `set_ranges` alphabet.

Tuning: `--score-on valid` scores on pool images after the largest N instead (as many as the test part, never
trained on), so a change to the recipe is chosen on a validation set, never on the test part; its rows say
`"scored_on": "valid"` and go to OUT/results_valid.jsonl. `--train-args "..."` passes more `captcha-train`
options (a variant to compare, e.g. `--aug strong`). `--rescore` scores again the runs already in OUT (their
`model.onnx`) instead of training them: what a change to reading (decoding, views) does to the same readers.

Case: when the labels' case looks unreliable (`data.infer_scheme` folds it), every reader is compared
case-insensitively; when the labels use one case only, ddddocr's answers are put in that case (as our
models, whose alphabet has that case only, answer). One JSON line per point; OUT/results.jsonl and
OUT/few_shot.png (accuracy against N, the zero-label reader and ddddocr as lines). ddddocr comes from the
`bench` extra (`pip install -e '.[bench]'`) and is imported here only, never by the package.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))
from captcha_nb.core import image_files, label_from_path  # noqa: E402
from captcha_nb.data import infer_scheme  # noqa: E402


def test_part(label: str, share: float = 0.3) -> bool:
    "Is a label in the fixed test part? (a hash of the label, the same on every machine)"
    return int(hashlib.sha1(f'few_shot:{label.lower()}'.encode()).hexdigest()[:12], 16) / 16**12 < share


def split(folder: Path, share: float = 0.3, seed: int = 0):
    "(test files, pool files in a fixed shuffle)"
    import numpy as np
    files = image_files(folder)
    test = [f for f in files if test_part(label_from_path(f), share)]
    pool = [f for f in files if not test_part(label_from_path(f), share)]
    return test, [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]


def link(files, d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for f in files: os.symlink(f.resolve(), d/f.name)
    return d


def last_json(out: str) -> dict: return json.loads(out.strip().splitlines()[-1])


def trust(res: dict) -> dict:
    "How far the answers' confidence can be trusted (captcha-eval's calibration): ECE, its floor on this many answers, the most confident 90 %"
    cal = res.get('calibration') or {}
    return dict(ece=cal.get('ece'), ece_floor=cal.get('ece_floor'), keep_90=cal.get('keep_90'))


def run(cmd, log: Path) -> str:
    "Run a command, keep its output in `log`, fail loudly with its end"
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    log.write_text(r.stdout + r.stderr)
    if r.returncode: raise SystemExit(f'{cmd[0]} failed ({r.returncode}), see {log}:\n{(r.stdout + r.stderr)[-2000:]}')
    return r.stdout


def ddddocr_scores(files, alphabet: str, fold) -> list[dict]:
    "Whole-text accuracy of ddddocr's four configurations on `files`"
    import io
    import ddddocr
    from PIL import Image
    def png(f):  # composite transparency on white, as our loader does
        im = Image.open(f).convert('RGBA')
        b = io.BytesIO(); Image.alpha_composite(Image.new('RGBA', im.size, 'white'), im).convert('RGB').save(b, 'PNG')
        return b.getvalue()
    data, truth = [png(f) for f in files], [fold(label_from_path(f)) for f in files]
    out = []
    for beta in (False, True):
        for ranges in (False, True):
            ocr = ddddocr.DdddOcr(show_ad=False, beta=beta)
            if ranges: ocr.set_ranges(alphabet)
            t = time.perf_counter()
            preds = [fold(ocr.classification(b)) for b in data]
            out.append(dict(reader='ddddocr', beta=beta, set_ranges=ranges, seq_acc=round(sum(p == t for p, t in zip(preds, truth)) / len(truth), 4),
                            img_per_s=round(len(data) / (time.perf_counter() - t), 1)))
    return out


def plot(rows: list[dict], name: str, path: Path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pts = sorted((r['n'], r['seq_acc']) for r in rows if r['reader'] == 'captcha_nb')
    fig, ax = plt.subplots(figsize=(6, 4))
    if pts: ax.plot([n for n, _ in pts], [a for _, a in pts], 'o-', label='captcha_nb, fine-tuned from the general reader')
    scratch = sorted((r['n'], r['seq_acc']) for r in rows if r['reader'] == 'captcha_nb from scratch')
    if scratch: ax.plot([n for n, _ in scratch], [a for _, a in scratch], 's--', color='grey', label='captcha_nb from random weights')
    for r, style in ((next((r for r in rows if r['reader'] == 'general reader'), None), 'g--'),
                     (max((r for r in rows if r['reader'] == 'ddddocr'), key=lambda r: r['seq_acc'], default=None), 'r:')):
        if r: ax.axhline(r['seq_acc'], ls=style[1:], color=style[0], label=f"{r['reader']}, no labels ({r['seq_acc']:.1%})")
    ax.set_xscale('log'); ax.set_xticks([n for n, _ in pts] or [1]); ax.set_xticklabels([str(n) for n, _ in pts] or ['1'])
    ax.set_ylim(0, 1.02); ax.set_xlabel('labelled training images'); ax.set_ylabel('whole-text accuracy on the test part')
    ax.set_title(name); ax.grid(alpha=0.3); ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def calibration_fit(metrics: dict) -> dict:
    "What training fitted to calibrate a run (its metrics.json): temperature, confidence map, on how many validation images, over how many views"
    c = metrics.get('calibration') or {}
    return dict(temperature=c.get('temperature'), confidence_map=c.get('confidence_map'), fitted_on=(c.get('fitted_on') or {}).get('n'),
                views=c.get('views', 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('dir', type=Path, help='folder of labelled whole CAPTCHAs')
    p.add_argument('--n', default='50,100,200,400', help='training set sizes (comma-separated)')
    p.add_argument('--minutes', type=float, default=10, help='captcha-train --minutes for each point')
    p.add_argument('--reader', type=Path, default=ROOT/'models'/'reader', help='the general reader to start from (make run)')
    p.add_argument('--out', type=Path, default=None, help='where runs, results.jsonl and the plot go (default runs/few_shot/NAME)')
    p.add_argument('--no-ddddocr', action='store_true', help='skip the pretrained peer')
    p.add_argument('--test-share', type=float, default=0.3, help='share of labels in the test part')
    p.add_argument('--scratch', action='store_true', help='also train each point from random weights (no --init-from), to compare')
    p.add_argument('--score-on', choices=('test', 'valid'), default='test',
                   help='valid: score on pool images after the largest N (for tuning), never on the test part')
    p.add_argument('--train-args', default='', help='more captcha-train options, e.g. "--aug strong" (quoted, split on spaces)')
    p.add_argument('--rescore', action='store_true', help="score the runs already in OUT again instead of training them (a change to reading only)")
    a = p.parse_args(argv)
    name = a.dir.resolve().name
    out = (a.out or ROOT/'runs'/'few_shot'/name).resolve(); out.mkdir(parents=True, exist_ok=True)
    if not (a.reader/'learner.pkl').exists(): raise SystemExit(f'no general reader at {a.reader}: run `make run` (or `make data reader export`) first')
    test, pool = split(a.dir, a.test_share)
    scheme = infer_scheme([a.dir])
    ns = [int(n) for n in a.n.split(',') if n.strip()]
    if max(ns) > len(pool): raise SystemExit(f'{name}: the pool has {len(pool)} images, fewer than N={max(ns)}')
    if a.score_on == 'valid':
        test = pool[max(ns):][:len(test)]
        if len(test) < 20: raise SystemExit(f'{name}: only {len(test)} pool images after N={max(ns)} to validate on')
    case = scheme.case
    one_case = 'lower' if not any(c.isupper() for c in scheme.alphabet) else 'upper' if not any(c.islower() for c in scheme.alphabet) else None
    fold = (str.lower if case == 'lower' or one_case == 'lower' else str.upper if one_case == 'upper' else (lambda s: s))
    tmp = Path(tempfile.mkdtemp(prefix=f'few_shot_{name}_'))
    test_dir = link(test, tmp/'test')
    rows = []
    def emit(row):
        row = dict(scheme=name, n_test=len(test), scored_on=a.score_on, **row); rows.append(row); print(json.dumps(row), flush=True)
        with open(results, 'a') as f: f.write(json.dumps(row) + '\n')
    results = out/('results.jsonl' if a.score_on == 'test' else 'results_valid.jsonl')
    results.unlink(missing_ok=True)
    zero = last_json(run([BIN/'captcha-eval', a.reader/'model.onnx', test_dir, '--alphabet', scheme.alphabet], out/'eval_zero.log'))
    emit(dict(reader='general reader', n=0, seq_acc=zero['seq_acc'], char_acc=zero['char_acc'], **trust(zero)))
    if not a.no_ddddocr:
        ranges = scheme.alphabet + (''.join(c.upper() for c in scheme.alphabet if c.islower()) if case == 'lower' else '')
        for r in ddddocr_scores(test, ranges, fold): emit(dict(n=0, **r))
    for n in ns:
        train_dir = link(pool[:n], tmp/f'train{n}')
        for init in ([True, False] if a.scratch else [True]):
            run_dir, tag = out/f'n{n}{"" if init else "-scratch"}', f'n{n}{"" if init else "_scratch"}'
            t = time.time()
            if a.rescore and not (run_dir/'model.onnx').exists(): sys.exit(f'--rescore: no {run_dir}/model.onnx to score again')
            if not a.rescore:
                run([BIN/'captcha-train', '--real-dirs', train_dir, *(['--init-from', a.reader] if init else []), '--minutes', a.minutes,
                     '--out-dir', run_dir, '--test-pct', 0, '--quiet', *a.train_args.split()], out/f'train_{tag}.log')
                run([BIN/'captcha-export', run_dir, '--no-int8'], out/f'export_{tag}.log')
            res = last_json(run([BIN/'captcha-eval', run_dir/'model.onnx', test_dir], out/f'eval_{tag}.log'))
            m = json.loads((run_dir/'metrics.json').read_text())
            emit(dict(reader='captcha_nb' if init else 'captcha_nb from scratch', n=n, minutes=a.minutes, train_args=a.train_args, seq_acc=res['seq_acc'],
                      char_acc=res['char_acc'], train_s=m['timings']['train_s'], total_s=m['timings']['total_s'] if a.rescore else round(time.time() - t, 1),
                      **({'rescored': True} if a.rescore else {}),
                      case=m['params']['case'], size=m['params']['size'], precision=m['device']['precision'],
                      **calibration_fit(m), **trust(res)))
    png = out/('few_shot.png' if a.score_on == 'test' else 'few_shot_valid.png')
    plot(rows, f'{name}: {len(test)} {a.score_on} images', png)
    print(f'plot: {png}')


if __name__ == '__main__':
    main()

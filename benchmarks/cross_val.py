#!/usr/bin/env python
"""How well does a recipe read a small labelled folder? Out-of-fold scores on every one of its images.

    .venv/bin/python benchmarks/cross_val.py DIR [--folds 5] [--init-from MODEL] [--minutes 2] [--exclude FILE]
                                             [--set NAME=VALUE ...] [--out runs/cross_val/NAME]

A held-out split of a few hundred images is too small to tell 93 % from 97 % (one crop of 52 is 2 points).
Here DIR is cut into `--folds` parts; each part is read by a model trained on the others (the run a user
makes: `run_training`, as `captcha-train --real-dirs DIR --exclude PART ...`, then exported to ONNX), so every
image is scored once by a model that never saw it, and accuracy and calibration are pooled over all of them.
Parts are cut by a hash of each file name for character crops (a label is one character, shared by
hundreds) and of each label for whole CAPTCHAs (repeats of a text stay in one part), the same on every machine.

`--exclude FILE` (a label audit's findings, one file name per line) keeps those files out of every training
run; they are still read, and reported with and without them. `--set NAME=VALUE` sets any other
`TrainConfig` field (e.g. `--set n_synth=2000`). Writes OUT/per_image.jsonl (file, label, reading,
confidence, part) and OUT/cross_val.json; prints a JSON line last. Real data is never copied: OUT holds
models, scores and links.
"""
import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from captcha_nb.core import calibration, image_files, label_from_path  # noqa: E402
from captcha_nb.data import detect_task, read_file_list  # noqa: E402


def part_of(f: Path, task: str, folds: int) -> int:
    "Which part a file is in: a hash of its name (crops) or of its label (whole CAPTCHAs)"
    key = f.name if task == 'char' else label_from_path(f).lower()
    return int(hashlib.sha1(f'cross_val:{key}'.encode()).hexdigest()[:12], 16) % folds


def config_values(pairs) -> dict:
    "NAME=VALUE pairs as `TrainConfig` values, typed by `captcha-train`'s own parser"
    from captcha_nb.train import TrainConfig, _train_parser
    kinds = {f.name: f.type in (bool, 'bool') for f in fields(TrainConfig)}
    argv, names = ['--out-dir', '-'], []
    for pair in pairs:
        name, sep, value = pair.partition('=')
        if not sep or name not in kinds: raise SystemExit(f'--set {pair}: expected NAME=VALUE with NAME one of {sorted(kinds)}')
        names.append(name)
        argv += ([f'--{name}'] if value.lower() in ('1', 'true', 'yes') else []) if kinds[name] else [f'--{name}', value]
    given = vars(_train_parser().parse_args(argv))
    return {n: given[n] for n in names}


def summary(rows: list[dict], listed: set[str]) -> dict:
    "Pooled accuracy and calibration, with and without the listed files, and accuracy per part"
    right = [r['read'] == r['label'] for r in rows]
    kept = [ok for r, ok in zip(rows, right) if r['file'] not in listed]
    parts = sorted({r['part'] for r in rows})
    return dict(n=len(rows), accuracy=round(sum(right) / len(rows), 4),
                n_unlisted=len(kept), accuracy_unlisted=round(sum(kept) / max(1, len(kept)), 4),
                per_part=[round(sum(ok for r, ok in zip(rows, right) if r['part'] == p) / sum(r['part'] == p for r in rows), 4) for p in parts],
                calibration=calibration([r['confidence'] for r in rows], right),
                mistakes=sorted(({k: r[k] for k in ('file', 'label', 'read', 'confidence')} for r, ok in zip(rows, right) if not ok),
                                key=lambda r: -r['confidence']))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('dir', type=Path, help='folder of labelled images (crops or whole CAPTCHAs)')
    p.add_argument('--folds', type=int, default=5, help='parts; each is read by a model trained on the others')
    p.add_argument('--init-from', default='', help='model folder to start each run from (e.g. models/default, models/reader)')
    p.add_argument('--minutes', type=float, default=2, help='time budget of each run')
    p.add_argument('--exclude', type=Path, default=None, help='file names never trained on (a label audit), still scored')
    p.add_argument('--set', action='append', default=[], metavar='NAME=VALUE', help='another TrainConfig field, repeatable')
    p.add_argument('--out', type=Path, default=None, help='where the runs and scores go (default runs/cross_val/NAME)')
    a = p.parse_args(argv)
    if a.folds < 2: raise SystemExit(f'--folds must be at least 2, not {a.folds}')
    files = image_files(a.dir)
    if not files: raise SystemExit(f'no images in {a.dir}')
    listed = read_file_list(a.exclude) if a.exclude else set()
    extra = config_values(a.set)
    from captcha_nb.export import evaluate_folder, export_dir, load_model
    from captcha_nb.train import TrainConfig, run_training
    task = detect_task(files)
    out = (a.out or ROOT/'runs'/'cross_val'/a.dir.resolve().name).resolve()
    part = {f: part_of(f, task, a.folds) for f in files}
    rows = []
    for k in range(a.folds):
        held = [f for f in files if part[f] == k]
        if not held: raise SystemExit(f'part {k} of {a.folds} is empty: {len(files)} images are too few for {a.folds} parts')
        d = out/f'part{k}'; d.mkdir(parents=True, exist_ok=True)
        (d/'exclude.txt').write_text(''.join(f'{n}\n' for n in sorted({f.name for f in held} | listed)))
        scored = d/'scored'; scored.mkdir(exist_ok=True)
        for f in held:
            if not (scored/f.name).exists(): os.symlink(f.resolve(), scored/f.name)
        t = time.time()
        cfg = TrainConfig(**{**dict(real_dirs=str(a.dir.resolve()), exclude=str(d/'exclude.txt'), init_from=a.init_from, minutes=a.minutes,
                                    test_pct=0.0, out_dir=str(d/'model'), wandb_mode='disabled'), **extra})
        run_training(cfg, progress=False)
        export_dir(d/'model', int8=False)
        res = evaluate_folder(load_model(d/'model'/'model.onnx'), scored, per_image=True)
        rows += [dict(r, part=k) for r in res['per_image']]
        print(json.dumps(dict(part=k, n=res['n'], accuracy=res.get('seq_acc', res['char_acc']), seconds=round(time.time() - t))), flush=True)
    with open(out/'per_image.jsonl', 'w') as fh: fh.writelines(json.dumps(r) + '\n' for r in rows)
    res = dict(dir=str(a.dir), task=task, folds=a.folds, init_from=a.init_from, minutes=a.minutes, set=extra,
               listed=sorted(listed), **summary(rows, listed))
    (out/'cross_val.json').write_text(json.dumps(res, indent=1))
    cal = res['calibration']
    print(f"{res['n']} images, out of fold: {res['accuracy']:.1%} read right ({res['accuracy_unlisted']:.1%} of the "
          f"{res['n_unlisted']} not in --exclude); parts {res['per_part']}; ECE {cal['ece']:.1%} (floor {cal['ece_floor']:.1%}); "
          f"the most confident 90 % are {cal['keep_90']['accuracy']:.1%} right; {out/'cross_val.json'}", file=sys.stderr)
    print(json.dumps({k: v for k, v in res.items() if k != 'mistakes'}))


if __name__ == '__main__':
    main()

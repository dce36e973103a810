#!/usr/bin/env python
"""The README's few-shot table (and a bar chart) from `benchmarks/few_shot.py` runs.

    .venv/bin/python benchmarks/few_shot_table.py runs/few_shot/* [--plot nbs/images/few_shot.png] [--curve PNG]

One row per scheme (runs of one scheme in several folders are combined): test images, ddddocr's best
configuration, the general reader with the alphabet hint (no labels), and each fine-tuned point (from the
general reader; from random weights where `--scratch` ran). Then a second table: the calibration of the
200-label readers on the same test images (temperature, expected calibration error, and the accuracy of the
most confident 90 % of their answers). `--curve` draws the learning curve: accuracy against the number of labels
per scheme (0 is the general reader with no labels), ddddocr a dashed line where it was scored.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

FINE, SCRATCH = 'captcha_nb', 'captcha_nb from scratch'


def load(folders) -> dict[str, list[dict]]:
    "Rows of every results.jsonl, grouped by scheme; a fine-tuned row written before few_shot.py recorded the calibration fit gets it from its run's metrics.json"
    from few_shot import calibration_fit
    runs = {}
    for f in folders:
        for line in (Path(f)/'results.jsonl').read_text().splitlines():
            if not line.strip(): continue
            r = json.loads(line)
            m = Path(f)/f"n{r.get('n')}"/'metrics.json'
            if r['reader'] == FINE and 'confidence_map' not in r and m.exists(): r.update(calibration_fit(json.loads(m.read_text())))
            runs.setdefault(r['scheme'], []).append(r)
    return runs


def pick(rs, reader: str, n: int):
    return next((r['seq_acc'] for r in rs if r['reader'] == reader and r['n'] == n), None)


def best_ddddocr(rs): return max((r['seq_acc'] for r in rs if r['reader'] == 'ddddocr'), default=None)


def pct(x, n: int = None) -> str:
    "A share as the README prints it; with `n`, the images it is a share of, from the count it stands for (rows keep 4 digits: 78/172 is 0.4535)"
    return '' if x is None else f'{100 * (round(x * n) / n if n else x):.1f} %'


def table(runs: dict) -> str:
    ns = sorted({r['n'] for rs in runs.values() for r in rs if r['reader'] == FINE})
    scratch = sorted({r['n'] for rs in runs.values() for r in rs if r['reader'] == SCRATCH})
    head = ['scheme', 'test images', 'ddddocr (best of 4)', 'general reader, no labels']
    head += [f'{n} labels' for n in ns] + [f'{n} labels, from scratch' for n in scratch]
    out = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, rs in runs.items():
        zero = pick(rs, 'general reader', 0)
        k = rs[0]['n_test']
        cells = [f'`{name}`', str(k), pct(best_ddddocr(rs), k), pct(zero, k)]
        cells += [pct(pick(rs, FINE, n), k) for n in ns] + [pct(pick(rs, SCRATCH, n), k) for n in scratch]
        out.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)


def trust_table(runs: dict, n: int = 200) -> str:
    "How far the fine-tuned readers' confidence can be trusted on the test part: temperature and confidence map, ECE, the most confident 90 %"
    out = ['| scheme | temperature; confidence map (slope, bias); validation images they were fitted on; views averaged | expected calibration error '
           '| ECE of a calibrated reader (sampling alone) | answers kept at the 90 % threshold | their accuracy | accuracy of all |',
           '|---|---|---|---|---|---|---|']
    for name, rs in runs.items():
        r = next((r for r in rs if r['reader'] == FINE and r['n'] == n and r.get('keep_90')), None)
        cmap = r and r.get('confidence_map')
        fit = r and '; '.join(x for x in (str(r['temperature']), cmap and f"({cmap['slope']}, {cmap['bias']})",
                                          r.get('fitted_on') and f"{r['fitted_on']} images", f"{r.get('views', 1)} view{'s' if r.get('views', 1) > 1 else ''}") if x)
        if r: out.append(f"| `{name}` | {fit} | {pct(r['ece'])} | {pct(r.get('ece_floor'))} | {pct(r['keep_90']['kept'])} (confidence >= {r['keep_90']['threshold']:.3f}) "
                         f"| {pct(r['keep_90']['accuracy'])} | {pct(r['seq_acc'])} |")
    return '\n'.join(out)


def plot(runs: dict, path: Path, n: int = 200):
    "Grouped bars per scheme: ddddocr, the general reader with no labels, and `n` labels"
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    names = list(runs)
    bars = [('ddddocr, no labels', [best_ddddocr(runs[s]) for s in names], 'tab:red'),
            ('general reader, no labels', [pick(runs[s], 'general reader', 0) for s in names], 'tab:green'),
            (f'captcha_nb, {n} labels, 10 min', [pick(runs[s], FINE, n) for s in names], 'tab:blue')]
    x, w = np.arange(len(names)), 0.27
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, (label, vals, colour) in enumerate(bars):
        v = [a or 0 for a in vals]
        ax.bar(x + (i - 1) * w, v, w, label=label, color=colour)
        for xi, a in zip(x + (i - 1) * w, vals):
            if a is not None: ax.text(xi, a + 0.01, f'{100 * a:.0f}', ha='center', fontsize=7)
    ax.set_xticks(x); ax.set_xticklabels(names, fontsize=8); ax.set_ylim(0, 1.08)
    ax.set_ylabel('whole-text accuracy (test part)'); ax.legend(fontsize=7, ncol=3, loc='lower center', bbox_to_anchor=(0.5, 1.0), frameon=False); ax.grid(axis='y', alpha=0.3)
    fig.tight_layout(); path.parent.mkdir(parents=True, exist_ok=True); fig.savefig(path, dpi=110); plt.close(fig)


def plot_curve(runs: dict, path: Path):
    "Accuracy against labelled images, a line per scheme (the general reader at 0), ddddocr dashed in the same colour"
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.6))
    peer = False
    for (name, rs), colour in zip(runs.items(), plt.rcParams['axes.prop_cycle'].by_key()['color']):
        ns = sorted({r['n'] for r in rs if r['reader'] in (FINE, 'general reader')})
        ax.plot(ns, [pick(rs, FINE if n else 'general reader', n) for n in ns], 'o-', color=colour, label=name)
        if (peer_acc := best_ddddocr(rs)) is not None: ax.axhline(peer_acc, color=colour, ls='--', lw=1); peer = True
    ax.set_xlabel('labelled images (10 minutes from the general reader; 0: the general reader alone)')
    ax.set_ylabel('whole-text accuracy (test part)'); ax.set_ylim(0, 1.02); ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title='dashed: ddddocr, no labels' if peer else None, title_fontsize=7, loc='lower right')
    fig.tight_layout(); path.parent.mkdir(parents=True, exist_ok=True); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('folders', nargs='+', type=Path, help='few_shot.py output folders (each with results.jsonl)')
    p.add_argument('--plot', type=Path, help='also write a bar chart (PNG) here')
    p.add_argument('--curve', type=Path, help='also write the learning curve (PNG) here')
    a = p.parse_args(argv)
    runs = load(a.folders)
    print(table(runs))
    print()
    print(trust_table(runs))
    if a.plot: plot(runs, a.plot); print(f'plot: {a.plot}')
    if a.curve: plot_curve(runs, a.curve); print(f'curve: {a.curve}')


if __name__ == '__main__':
    main()

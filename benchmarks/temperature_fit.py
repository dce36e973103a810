#!/usr/bin/env python
"""How far can one temperature calibrate a whole-CAPTCHA reader, how well do 20 validation images find it, and what does Platt scaling add?

    .venv/bin/python benchmarks/temperature_fit.py MODEL.onnx DIR [--n-train 200] [--draws 30] [--size 20] [--prior-scale 4,16]

MODEL is a reader that `benchmarks/few_shot.py DIR --n N` trained on the first N images of DIR's pool (N =
`--n-train`); the pool images after them, as many as the test part, are the validation part that
`few_shot.py --score-on valid` scores, never trained on (the test part is not touched). On them:

- the best single temperature (`train.TEMPERATURES`) and its expected calibration error: what temperature
  scaling can do at most for this reader;
- `--draws` times, `--size` random validation images fit T as training does (`train.fit_temperature`: the log
  loss of the answer's confidence against its being right), and, to compare, by the negative log-likelihood of the
  true labels (CTC's loss, the textbook objective); the ECE on the rest of the validation part;
- on the same draws, T and then Platt scaling of the answer's confidence (`train.fit_confidence_map`), as training
  does now (`temperature_and_map`); with `--prior-scale K[,K...]`, also with both priors (the pull towards T = 1
  and the identity map) K times as strong (`temperature_and_map_prior_K`).

Prints one JSON line.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from few_shot import link, split  # noqa: E402
from captcha_nb.core import calibration, recalibrate  # noqa: E402
from captcha_nb.data import import_folder  # noqa: E402
from captcha_nb.export import OnnxReader, model_input  # noqa: E402
from captcha_nb.train import TEMPERATURES, fit_confidence_map, fit_temperature, read_logits  # noqa: E402


def valid_logits(reader: OnnxReader, folder: Path, n_train: int):
    "Raw outputs and labels (as the model reads them: case folded) of the validation part of `folder`'s pool"
    test, pool = split(folder)
    files = pool[n_train:n_train + len(test)]
    with tempfile.TemporaryDirectory() as tmp:
        ls = import_folder(link(files, Path(tmp)/'valid'), 'captcha', None, None, progress=False, **model_input(reader))
    x = ((np.stack([a for a, _ in ls.items])[:, None] / 255 - reader.mean) / reader.std).astype(np.float32)  # as make_dls feeds it
    return torch.tensor(np.concatenate([reader.logits(x[i:i + 64]) for i in range(0, len(x), 64)])), ls.labels


def text_probability(logits, texts, alphabet: str):
    "P(text) of each image's `texts` at a temperature, for all images at once (`ctc_loss`: the sum `core.ctc_read` makes); cached by T"
    targets = torch.tensor([alphabet.index(c) + 1 for t in texts for c in t], dtype=torch.long)
    lens, steps, cache = torch.tensor([len(t) for t in texts]), torch.full((len(texts),), logits.shape[1]), {}
    def p(t: float) -> np.ndarray:
        if t not in cache:
            lp = (logits / t).log_softmax(-1).transpose(0, 1)
            cache[t] = np.exp(-F.ctc_loss(lp, targets, steps, lens, blank=0, reduction='none', zero_infinity=True).double().numpy())
        return cache[t]
    return p


def nll_temperature(logits, labels, alphabet: str) -> float:
    "The T minimising the mean CTC negative log-likelihood of the true labels, with `fit_temperature`'s prior"
    targets = torch.tensor([alphabet.index(c) + 1 for t in labels for c in t])
    lens, steps = torch.tensor([len(t) for t in labels]), torch.full((len(labels),), logits.shape[1])
    nll = [F.ctc_loss((logits / t).log_softmax(-1).transpose(0, 1), targets, steps, lens, blank=0, reduction='none',
                      zero_infinity=True).mean().item() for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(np.array(nll) + np.log(TEMPERATURES) ** 2 / (2 * len(labels))))])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('model', type=Path); p.add_argument('dir', type=Path)
    p.add_argument('--n-train', type=int, default=200); p.add_argument('--draws', type=int, default=30)
    p.add_argument('--size', type=int, default=20, help='validation images a run fits T on (10 %% of 200 labels)')
    p.add_argument('--prior-scale', default='', help='also fit with both priors this many times as strong (comma-separated)')
    a = p.parse_args(argv)
    scales = [float(k) for k in a.prior_scale.split(',') if k.strip()]
    reader = OnnxReader(a.model)
    logits, labels = valid_logits(reader, a.dir, a.n_train)
    keep = [i for i, l in enumerate(labels) if set(l) <= set(reader.alphabet)]  # a label the model cannot write cannot be scored
    logits, labels = logits[keep], [labels[i] for i in keep]
    texts, _ = read_logits(logits, 'captcha', reader.alphabet, 1.0, reader.min_len, reader.max_len)  # the same texts at any T
    right = np.array([t == l for t, l in zip(texts, labels)])
    p_text = text_probability(logits, texts, reader.alphabet)
    def read(idx, t, cmap=(1.0, 0.0)): return recalibrate(p_text(t)[idx], *cmap), right[idx]
    def ece(idx, t, cmap=(1.0, 0.0)): return calibration(*read(idx, t, cmap))['ece']
    every = np.arange(len(labels))
    grid = {float(t): ece(every, float(t)) for t in TEMPERATURES}
    best = min(grid, key=grid.get)
    rng, fits, maps = np.random.default_rng(0), {'fit_temperature': [], 'true_label_nll': [], 'temperature_and_map': []}, []
    fits.update({f'temperature_and_map_prior_{k:g}': [] for k in scales})
    for _ in range(a.draws):
        idx = rng.permutation(len(labels)); fit, rest = idx[:a.size], idx[a.size:]
        fl = [labels[i] for i in fit]
        for name, t in (('fit_temperature', fit_temperature(logits[fit], fl, 'captcha', reader.alphabet, reader.min_len, reader.max_len)),
                        ('true_label_nll', nll_temperature(logits[fit], fl, reader.alphabet))):
            fits[name].append((t, ece(rest, t)))
        t = fits['fit_temperature'][-1][0]
        maps.append(fit_confidence_map(*read(fit, t)))  # on the same images, after their T
        fits['temperature_and_map'].append((t, ece(rest, t, maps[-1])))
        for k in scales:  # the same draw, both priors k times as strong
            tk = fit_temperature(logits[fit], fl, 'captcha', reader.alphabet, reader.min_len, reader.max_len, prior=k)
            fits[f'temperature_and_map_prior_{k:g}'].append((tk, ece(rest, tk, fit_confidence_map(*read(fit, tk), prior=k))))
    print(json.dumps(dict(scheme=a.dir.name, n_valid=len(labels), seq_acc=round(float(right.mean()), 4),
                          mean_confidence_at_T1=round(float(p_text(1.0).mean()), 4),  # uncalibrated: under-confident?
                          trained_T=reader.temperature, best_T=round(best, 4), ece_at_best_T=round(grid[best], 4),
                          **{name: dict(median_T=round(float(np.median([t for t, _ in v])), 4), mean_ece=round(float(np.mean([e for _, e in v])), 4))
                             for name, v in fits.items()}, median_map=[round(float(np.median(v)), 4) for v in zip(*maps)],
                          draws=a.draws, size=a.size)))


if __name__ == '__main__':
    main()

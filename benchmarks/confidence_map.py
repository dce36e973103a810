#!/usr/bin/env python
"""What each calibration step did for a `benchmarks/few_shot.py` run, on the test part it was scored on.

    .venv/bin/python benchmarks/few_shot.py ../shared/data/NAME --n N --minutes 10 --out OUT
    .venv/bin/python benchmarks/confidence_map.py OUT/nN ../shared/data/NAME

The run's exported reader reads the test part of DIR's split (`few_shot.split`, the images it never trained on)
once; its answers are then scored in steps: raw (T = 1, the image alone, no map), with the temperature training
fitted, for a reader whose confidence averages moved views of the image (`confidence_views` > 1) with T and the
views, and with everything the reader serves (T, views, the confidence map). Only the confidence changes, never
the answers. Prints one JSON line: expected calibration error and mean confidence of each, and the accuracy.
This measures a decision already taken on the validation parts (`03_train`, "Calibration"); it chooses nothing.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from few_shot import link, split  # noqa: E402
from temperature_fit import text_probability  # noqa: E402
from captcha_nb.core import calibration, recalibrate  # noqa: E402
from captcha_nb.data import import_folder  # noqa: E402
from captcha_nb.export import OnnxReader, model_input  # noqa: E402
from captcha_nb.train import read_logits  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', type=Path, help='a few_shot.py run folder (with model.onnx)'); p.add_argument('dir', type=Path)
    a = p.parse_args(argv)
    r = OnnxReader(a.run/'model.onnx')
    test, _ = split(a.dir)
    with tempfile.TemporaryDirectory() as tmp:
        ls = import_folder(link(test, Path(tmp)/'test'), 'captcha', None, None, progress=False, **model_input(r))
    keep = [i for i, l in enumerate(ls.labels) if set(l) <= set(r.alphabet)]  # a label the model cannot write cannot be scored
    x = ((np.stack([ls.items[i][0] for i in keep])[:, None] / 255 - r.mean) / r.std).astype(np.float32)  # as make_dls feeds it
    out = np.concatenate([r.outputs(x[i:i + 64]) for i in range(0, len(x), 64)])
    stack = torch.tensor(out if out.ndim == 4 else out[:, None])  # (N, views, T, K); the first view is the image itself
    texts, _ = read_logits(stack[:, 0], 'captcha', r.alphabet, 1.0, r.min_len, r.max_len)  # the same texts at any T, views and map
    right = np.array([t == ls.labels[i] for t, i in zip(texts, keep)])
    per_view = [text_probability(stack[:, v], texts, r.alphabet) for v in range(stack.shape[1])]
    p_text = lambda t, views: np.mean([p(t) for p in per_view[:views]], 0)
    steps = {'raw': (1.0, 1, (1.0, 0.0)), 'temperature_only': (r.temperature, 1, (1.0, 0.0))}
    if r.views > 1: steps['temperature_and_views'] = (r.temperature, r.views, (1.0, 0.0))
    steps['temperature_and_map' if r.views == 1 else 'served'] = (r.temperature, r.views, r.confidence_map)
    res = {}
    for name, (t, views, cmap) in steps.items():
        c = recalibrate(p_text(t, views), *cmap)
        res[name] = dict(ece=calibration(c, right)['ece'], mean_confidence=round(float(np.mean(c)), 4))
    print(json.dumps(dict(scheme=a.dir.name, run=str(a.run), n=len(right), seq_acc=round(float(right.mean()), 4), temperature=r.temperature,
                          confidence_map=list(r.confidence_map), views=r.views, **res)))


if __name__ == '__main__':
    main()

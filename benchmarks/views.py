#!/usr/bin/env python
"""Do moved views of an image read it better, and does their averaged confidence separate right from wrong answers? On validation images.

    .venv/bin/python benchmarks/few_shot.py ../shared/data/NAME --n 200 --minutes 10 --out OUT
    .venv/bin/python benchmarks/views.py OUT/n200 ../shared/data/NAME [--views 1,3,5,7] [--count 300] [--more-moves MOVES]

The run's exported reader reads `--count` images of DIR's pool that come after the run's N training images
(`few_shot.split`: never trained on, never the test part; the `--score-on valid` images), once with each number of
views (`core.view_stack`: the image, then moved copies in the order of `core.VIEW_MOVES`). With one view the text is
the image's own reading; with more, the reading of any view that is most probable over all of them (`core.ctc_read`);
the confidence is that text's probability averaged over the views (T, no confidence map, so the views are compared alone).
Prints one JSON line: per number of views the accuracy, the area under the ROC curve of right against wrong, the
accuracy of the most confident 90 % and the expected calibration error (before any map: for a reader without one,
such as the general reader, what it serves), and images read per second (decoding, preprocessing, onnxruntime with all
cores, the answers: what serving one image more or less costs). This is how the default of `views` was chosen (`00_core`).
`--more-moves 'DX,DY,S;...'` appends moves to `core.VIEW_MOVES` for this reader only, so that more than seven
views can be tried (`00_core`, "More views?").
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from few_shot import split  # noqa: E402
from captcha_nb.core import VIEW_MOVES, calibration, fold_case, label_from_path  # noqa: E402
from captcha_nb.export import OnnxReader  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', type=Path, help='a few_shot.py run folder (nN, with model.onnx)'); p.add_argument('dir', type=Path)
    p.add_argument('--views', default='1,3,5,7'); p.add_argument('--count', type=int, default=300)
    p.add_argument('--n-train', type=int, help="the run's training images (default: N of the run folder's name nN)")
    p.add_argument('--more-moves', default='', help="moves after core.VIEW_MOVES, 'DX,DY,SCALE;...' (shares of width and height, scale)")
    a = p.parse_args(argv)
    counts = [int(v) for v in a.views.split(',')]
    try: more = tuple(tuple(float(x) for x in m.split(',')) for m in a.more_moves.split(';') if m.strip())
    except ValueError: sys.exit(f"--more-moves: numbers 'DX,DY,SCALE' separated by ';', not {a.more_moves!r}")
    if any(len(m) != 3 or m[2] <= 0 for m in more): sys.exit('--more-moves: each move is DX,DY,SCALE with SCALE > 0')
    moves = VIEW_MOVES + more  # the reader reads the first `views - 1` of these
    if not all(1 <= v <= 1 + len(moves) for v in counts): sys.exit(f'--views: each from 1 to {1 + len(moves)}')
    n_train = a.n_train if a.n_train is not None else int(a.run.name.lstrip('n'))
    _, pool = split(a.dir)
    files = pool[n_train:n_train + a.count]
    if not files: sys.exit(f'no pool images after the first {n_train} of {a.dir}')
    r = OnnxReader(a.run/'model.onnx')
    r.confidence_map, r.moves = (1.0, 0.0), moves
    labels = [fold_case(label_from_path(f), r.case) for f in files]
    row = dict(scheme=a.dir.name, run=str(a.run), n=len(files), **(dict(more_moves=more) if more else {}))
    for v in counts:
        r.views = v
        t0 = time.perf_counter()
        answers = r.predict([str(f) for f in files])
        img_s = len(files) / (time.perf_counter() - t0)
        texts = [x['text'] for x in answers]
        right, conf = np.array([t == l for t, l in zip(texts, labels)]), np.array([x['confidence'] for x in answers])
        cal = calibration(conf, right)  # the ECE and keep-90 that captcha-eval and the README report
        row[f'views_{v}'] = dict(seq_acc=round(float(right.mean()), 4), auroc=round(float(roc_auc_score(right, conf)), 4) if 0 < right.mean() < 1 else None,
                                 keep_90=cal['keep_90']['accuracy'], ece=cal['ece'], img_per_s=round(img_s, 1))
    print(json.dumps(row))


if __name__ == '__main__':
    main()

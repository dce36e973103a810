#!/usr/bin/env python
"""What denormals cost: a trained model's speed with tiny numbers kept and flushed to zero.

    .venv/bin/python benchmarks/denormals.py OUT_DIR [--seconds 8]

OUT_DIR is a training run (learner.pkl, and model.onnx once exported). Times a forward and backward pass of
a batch of 32 random inputs through the PyTorch model in training mode, and onnxruntime inference of
model.onnx at batch 32, each with denormals kept and flushed. Flushing must be set before the worker threads
start, so each measurement runs in a fresh process (`captcha_nb.model` flushes when imported, and
`export.onnx_session` asks onnxruntime to).
One JSON line: batches (of 32) per second for each mode.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

TORCH = '''
import sys, time, warnings; warnings.filterwarnings('ignore')
import torch
from fastai.learner import load_learner
from captcha_nb.core import usable_cpus
import captcha_nb.model  # flushes on import; the mode is set again below, still before any computation
torch.set_flush_denormal(sys.argv[2] == 'flush')  # the worker threads, started later, copy it
torch.set_num_threads(usable_cpus())  # as run_training does
learn = load_learner(sys.argv[1], cpu=True); m = learn.model.train(); meta = getattr(learn, 'meta', {})
x = torch.randn(32, 1, meta.get('input_height', 48), meta.get('input_width', 192))
t, n = time.perf_counter(), 0
while time.perf_counter() - t < float(sys.argv[3]): m(x).float().pow(2).mean().backward(); n += 1
print(n / (time.perf_counter() - t))
'''


ONNX = '''
import sys, time
import numpy as np, onnxruntime as ort
from captcha_nb.core import usable_cpus
opts = ort.SessionOptions(); opts.intra_op_num_threads = usable_cpus()
opts.add_session_config_entry('session.set_denormal_as_zero', '1' if sys.argv[2] == 'flush' else '0')
s = ort.InferenceSession(sys.argv[1], opts, providers=['CPUExecutionProvider'])
inp = s.get_inputs()[0]
x = np.random.default_rng(0).standard_normal((32, *[d if isinstance(d, int) else 1 for d in inp.shape[1:]])).astype(np.float32)
s.run(None, {inp.name: x})
t, n = time.perf_counter(), 0
while time.perf_counter() - t < float(sys.argv[3]): s.run(None, {inp.name: x}); n += 1
print(n / (time.perf_counter() - t))
'''


def rate(code: str, path: Path, mode: str, seconds: float) -> float:
    "Batches per second that `code` measures for `path` in a fresh process (the thread settings start clean)"
    out = subprocess.run([sys.executable, '-c', code, str(path), mode, str(seconds)], capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip().splitlines()[-1]), 3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', type=Path, help='a training run folder (learner.pkl, model.onnx)')
    p.add_argument('--seconds', type=float, default=8, help='seconds per measurement')
    a = p.parse_args(argv)
    if not (a.run/'learner.pkl').exists(): raise SystemExit(f'no learner.pkl in {a.run}: give a training run folder')
    res = dict(run=str(a.run), torch_train_batches_per_s={m: rate(TORCH, a.run/'learner.pkl', m, a.seconds) for m in ('keep', 'flush')})
    if (a.run/'model.onnx').exists():
        res['onnx_batches_per_s'] = {m: rate(ONNX, a.run/'model.onnx', m, a.seconds) for m in ('keep', 'flush')}
    print(json.dumps(res))


if __name__ == '__main__':
    main()

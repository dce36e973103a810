#!/usr/bin/env python
"""Training throughput: the fastai loop (Learner + DataLoaders, as 03_train uses them) against a plain PyTorch
loop on the same model, batch size and data, in one process. Prints a table, then one JSON line:
{"fastai_img_s": ..., "torch_img_s": ..., "ratio": ...}

    .venv/bin/python benchmarks/train_speed.py [--bs 64] [--batches 30] [--channels-last 0] [--aug 0]

The plain loop does no augmentation, so the like-for-like default is --aug 0; --aug 1 adds the batch
augmentation 03_train uses to the fastai side only.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from captcha_nb.core import ALPHABET, NORM_MEAN, NORM_STD, seed_everything, usable_cpus
from captcha_nb.data import make_dls, synth_items
from captcha_nb.model import char_model, make_learner


def torch_loop(items, bs, n_batches, channels_last):
    "Plain PyTorch: pre-made normalised tensors, Adam + one-cycle, cross-entropy"
    x = torch.tensor(__import__('numpy').stack([a for a, _ in items]))[:, None].float().div(255).sub(NORM_MEAN).div(NORM_STD)
    y = torch.tensor([ALPHABET.index(l) for _, l in items])
    model = char_model()
    if channels_last: model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=n_batches + 3)
    model.train()
    def step(i):
        idx = torch.randint(0, len(x), (bs,))
        xb = x[idx]
        if channels_last: xb = xb.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    for i in range(3): step(i)  # warm-up
    t = time.perf_counter()
    for i in range(n_batches): step(i)
    return n_batches * bs / (time.perf_counter() - t)


def fastai_loop(items, bs, n_batches, channels_last, aug):
    "fastai: make_dls + make_learner + fit_one_cycle, timed over `n_batches` training batches"
    from fastai.callback.core import Callback, CancelFitException
    class Timer(Callback):
        order = 99
        def before_fit(self): self.i, self.t = 0, None
        def after_batch(self):
            if not self.training: return
            self.i += 1
            if self.i == 3: self.t = time.perf_counter()  # after warm-up
            if self.i == 3 + n_batches: self.dt = time.perf_counter() - self.t; raise CancelFitException()
    n_train = bs * (n_batches + 3)
    dls = make_dls({'train': items[:n_train], 'valid': items[-bs:]}, bs=bs, aug=aug)
    learn = make_learner(dls, channels_last=channels_last)
    timer = Timer()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 3e-3, cbs=timer)
    return n_batches * bs / timer.dt


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--batches', type=int, default=30)
    ap.add_argument('--channels-last', type=int, default=0)
    ap.add_argument('--aug', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(usable_cpus())  # as run_training does
    seed_everything(0)
    items = synth_items(a.bs * (a.batches + 4), seed=0, progress=False)
    res = dict(bs=a.bs, batches=a.batches, threads=torch.get_num_threads(), channels_last=bool(a.channels_last), aug=bool(a.aug))
    res['torch_img_s'] = round(torch_loop(items, a.bs, a.batches, a.channels_last), 1)
    res['fastai_img_s'] = round(fastai_loop(items, a.bs, a.batches, a.channels_last, a.aug), 1)
    res['ratio'] = round(res['fastai_img_s'] / res['torch_img_s'], 3)
    print(f"plain torch {res['torch_img_s']} img/s, fastai {res['fastai_img_s']} img/s, ratio {res['ratio']} "
          f"(bs {a.bs}, {res['threads']} threads, channels_last {res['channels_last']}, augmentation {res['aug']})")
    print(json.dumps(res))

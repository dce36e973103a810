#!/usr/bin/env python
"""Run nbs/03_train.ipynb as one rank of a distributed (DDP) training. Launch with torchrun:

    .venv/bin/torchrun --standalone --nproc-per-node 2 tools/ddp_train.py OUT_DIR [-p name value ...]

Every rank executes the same notebook with papermill (papermill's kernel inherits torchrun's RANK,
WORLD_SIZE and MASTER_* variables); the notebook wraps the Learner in fastai's DistributedTrainer when
WORLD_SIZE > 1. Rank 0 writes OUT_DIR as a normal run, rank N writes OUT_DIR/rankN; each executed
notebook is OUT_DIR/train.rankN.ipynb. Across machines, use torchrun's --nnodes/--node-rank/--master-addr."""
import os
import sys
from pathlib import Path

import papermill as pm

ROOT = Path(__file__).resolve().parents[1]

if __name__ == '__main__':
    if len(sys.argv) < 2: sys.exit(__doc__)
    out, rest = Path(sys.argv[1]).resolve(), sys.argv[2:]
    if len(rest) % 3 or any(rest[i] != '-p' for i in range(0, len(rest), 3)): sys.exit('parameters must be given as -p NAME VALUE')
    params = {rest[i + 1]: rest[i + 2] for i in range(0, len(rest), 3)}
    for k, v in params.items():  # papermill's CLI would parse these as YAML; do the same
        import yaml
        params[k] = yaml.safe_load(v)
    rank = int(os.environ.get('RANK', 0))
    out.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(ROOT/'nbs'/'03_train.ipynb'), str(out/f'train.rank{rank}.ipynb'), cwd=str(ROOT/'nbs'),
                        parameters=dict(params, out_dir=str(out)), progress_bar=False)

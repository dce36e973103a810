#!/usr/bin/env python
"""One rank of a distributed (DDP) training run. Launch with torchrun:

    .venv/bin/torchrun --standalone --nproc-per-node 2 tools/ddp_train.py OUT_DIR [-p name value ...]

Every rank calls the same `train.run_training` with the same `TrainConfig` (the parameters of
nbs/03_train.ipynb, read as YAML values like papermill's -p); torchrun's RANK, WORLD_SIZE and MASTER_*
variables make it wrap the Learner in fastai's DistributedTrainer. Rank 0 writes OUT_DIR as a normal run,
rank N writes OUT_DIR/rankN. Across machines, use torchrun's --nnodes/--node-rank/--master-addr."""
import sys
from pathlib import Path

import yaml

if __name__ == '__main__':
    if len(sys.argv) < 2: sys.exit(__doc__)
    out, rest = Path(sys.argv[1]).resolve(), sys.argv[2:]
    if len(rest) % 3 or any(rest[i] != '-p' for i in range(0, len(rest), 3)): sys.exit('parameters must be given as -p NAME VALUE')
    params = {rest[i + 1]: yaml.safe_load(rest[i + 2]) for i in range(0, len(rest), 3)}  # as papermill's CLI reads them
    from captcha_nb.train import TrainConfig, run_training
    try: cfg = TrainConfig.from_params(dict(params, out_dir=str(out)), strict=True)
    except (TypeError, ValueError) as e: sys.exit(f'ddp_train: {e}')
    run_training(cfg, progress=False)

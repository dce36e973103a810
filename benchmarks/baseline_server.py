#!/usr/bin/env python
"""The server a user would otherwise write: FastAPI + PyTorch, one forward pass per request, no batching.
Same request format as captcha-serve's JSON form ({"image": base64}). Used by benchmarks/serve_bench.py.

    .venv/bin/python benchmarks/baseline_server.py MODEL_DIR PORT
"""
import base64
import sys

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request

from captcha_nb.core import ImageLoadError, to_input
from captcha_nb.export import load_learner_meta

learn = load_learner_meta(f'{sys.argv[1]}/learner.pkl')
model, alphabet = learn.model.eval(), learn.meta['alphabet']
app = FastAPI()


@app.post('/predict')
async def predict(request: Request):
    try: x = torch.from_numpy(to_input(base64.b64decode((await request.json())['image'])))[None]
    except (ImageLoadError, KeyError, ValueError) as e: raise HTTPException(400, str(e)) from None
    with torch.no_grad(): p = model(x).softmax(-1)[0]
    return {'label': alphabet[int(p.argmax())], 'confidence': float(p.max()),
            'probabilities': dict(zip(alphabet, p.tolist()))}


if __name__ == '__main__':
    uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')

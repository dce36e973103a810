"Property-based tests of the image loader: random bytes never crash it, random valid images always load."
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from captcha_nb.core import CAPTCHA_SIZE, CHAR_SIZE, ImageLoadError, image_features, load_image, to_input

FORMATS = ['PNG', 'JPEG', 'BMP', 'GIF', 'WEBP', 'TIFF']
MODES = ['L', 'RGB', 'RGBA', 'P', '1', 'LA', 'I', 'F']


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_load_or_raise_one_error(data):
    try: im = load_image(data)
    except ImageLoadError as e: assert str(e)
    else: assert im.mode == 'L' and im.size[0] > 0 and im.size[1] > 0


PNG_HEAD = io.BytesIO(); Image.new('L', (8, 8)).save(PNG_HEAD, 'PNG'); PNG_HEAD = PNG_HEAD.getvalue()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(PNG_HEAD) - 1), st.binary(min_size=1, max_size=64))
def test_mutated_png_loads_or_raises_one_error(pos, patch):
    data = PNG_HEAD[:pos] + patch + PNG_HEAD[pos + len(patch):]
    try: load_image(data)
    except ImageLoadError: pass


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=st.integers(1, 400), h=st.integers(1, 400), mode=st.sampled_from(MODES), fmt=st.sampled_from(FORMATS),
       seed=st.integers(0, 2**16))
def test_random_valid_images_always_load(w, h, mode, fmt, seed):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    b = io.BytesIO()
    try: im.save(b, format=fmt)
    except (OSError, ValueError, KeyError):  # this format cannot store this mode: store the nearest mode it can
        b = io.BytesIO(); im.convert('I;16' if mode in ('I', 'F') and fmt in ('PNG', 'TIFF') else 'RGB').save(b, format=fmt)
    out = load_image(b.getvalue())
    assert out.mode == 'L' and out.size == (w, h)
    for size in (CHAR_SIZE, CAPTCHA_SIZE):
        x = to_input(out, size)
        assert x.shape == (1, size[1], size[0]) and np.isfinite(x).all() and -1.0001 <= x.min() and x.max() <= 1.0001
    f = image_features(out)
    assert all(np.isfinite(v) for v in f.values())

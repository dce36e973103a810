"The one image loader on every kind of broken and odd input: one clear error type, never a crash."
import io

import numpy as np
import pytest
from PIL import Image

from captcha_nb.core import CAPTCHA_SIZE, CHAR_SIZE, CorruptImage, ImageLoadError, ImageTooLarge, NotAnImage, load_image, to_input


def png(im, fmt='PNG', **kw):
    b = io.BytesIO(); im.save(b, format=fmt, **kw); return b.getvalue()


@pytest.mark.parametrize('mode', ['L', 'RGB', 'RGBA', 'P', '1', 'LA', 'I;16', 'I', 'F', 'CMYK'])
def test_any_mode_gives_model_input(mode):
    im = Image.new(mode, (40, 60))
    x = to_input(im)
    assert x.shape == (1, CHAR_SIZE[1], CHAR_SIZE[0]) and x.dtype == np.float32


@pytest.mark.parametrize('fmt', ['PNG', 'JPEG', 'BMP', 'GIF', 'WEBP', 'TIFF'])
def test_common_formats_from_bytes(fmt):
    im = Image.new('RGB', (200, 50), (200, 10, 10))
    assert load_image(png(im, fmt)).size == CAPTCHA_SIZE


def test_palette_with_transparency_is_white():
    im = Image.new('P', (10, 10), 0); im.info['transparency'] = 0
    assert np.asarray(load_image(png(im))).min() == 255


def test_path_and_file_object(tmp_path):
    p = tmp_path/'x_1.png'; Image.new('L', (32, 52), 7).save(p)
    assert np.asarray(load_image(p)).max() == 7
    assert np.asarray(load_image(str(p))).max() == 7
    with open(p, 'rb') as f: assert load_image(f).size == (32, 52)


BROKEN = {
    'empty': b'',
    'text': b'definitely not an image',
    'truncated png': png(Image.new('L', (64, 64), 3))[:60],
    'png header only': b'\x89PNG\r\n\x1a\n',
    'zero bytes': b'\x00' * 1000,
    'bomb': png(Image.new('1', (12_000, 12_000))),
    'truncated jpeg': png(Image.new('RGB', (64, 64)), 'JPEG')[:200],
}


@pytest.mark.parametrize('name', BROKEN)
def test_broken_inputs_raise_one_error_type(name):
    with pytest.raises(ImageLoadError) as e: load_image(BROKEN[name])
    assert str(e.value)


KINDS = {'empty': CorruptImage, 'text': NotAnImage, 'truncated png': CorruptImage, 'png header only': NotAnImage,
         'zero bytes': NotAnImage, 'bomb': ImageTooLarge, 'truncated jpeg': CorruptImage}


@pytest.mark.parametrize('name', BROKEN)
def test_broken_inputs_have_a_kind(name):
    "The server maps these types to 400, 413 and 415: the kind must not depend on the message's wording"
    with pytest.raises(ImageLoadError) as e: load_image(BROKEN[name])
    assert type(e.value) is KINDS[name]


def test_not_an_image_message():
    with pytest.raises(NotAnImage, match='not an image'): load_image(b'GIF? no')


def test_bomb_message():
    with pytest.raises(ImageTooLarge, match='too large'): load_image(BROKEN['bomb'])


def test_unsupported_type():
    with pytest.raises(NotAnImage, match='cannot read'): load_image(12345)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match='no such image file'): load_image(tmp_path/'nope.png')


def test_oversized_bytes(monkeypatch):
    import captcha_nb.core as core
    monkeypatch.setattr(core, 'MAX_BYTES', 100)
    with pytest.raises(ImageTooLarge, match='more than'): load_image(b'x' * 101)


def test_array_inputs():
    assert load_image(np.zeros((3, 20, 10), np.uint8)).size == (10, 20)  # CHW
    assert load_image(np.ones((20, 10, 1), np.float32)).getextrema() == (255, 255)
    with pytest.raises(ImageLoadError): load_image(np.zeros((0, 5), np.uint8))


def test_ImageLoadError_is_ValueError():
    assert issubclass(ImageLoadError, ValueError)

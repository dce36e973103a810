"The cross-validation benchmark: every image is scored once, by a model that never trained on it."
import json
import sys

import pytest

from conftest import ROOT, write_captchas

sys.path.insert(0, str(ROOT/'benchmarks'))
import cross_val  # noqa: E402

from captcha_nb.core import image_files, label_from_path  # noqa: E402


def test_parts_keep_repeats_of_a_captcha_together_but_spread_a_crop_class(tmp_path):
    folder = write_captchas(tmp_path/'s', n=30)
    first = image_files(folder)[0]
    repeat = folder/f'{label_from_path(first)}_2.png'; repeat.write_bytes(first.read_bytes())
    assert cross_val.part_of(first, 'captcha', 5) == cross_val.part_of(repeat, 'captcha', 5)
    crops = [tmp_path/f'm_{i}.png' for i in range(50)]
    assert len({cross_val.part_of(f, 'char', 5) for f in crops}) == 5  # one class, every part
    assert cross_val.part_of(crops[0], 'char', 5) == cross_val.part_of(tmp_path/'x'/'m_0.png', 'char', 5)  # the name decides


def test_set_takes_a_train_config_field_in_its_type():
    assert cross_val.config_values(['n_synth=200', 'lr=0.001', 'pretrained=true', 'aug=none']) == dict(
        n_synth=200, lr=0.001, pretrained=True, aug='none')
    with pytest.raises(SystemExit, match='NAME=VALUE'): cross_val.config_values(['epochz=3'])
    with pytest.raises(SystemExit, match='NAME=VALUE'): cross_val.config_values(['epochs'])


def test_every_image_is_scored_once_by_a_model_that_never_saw_it(char_folder, tmp_path, capsys):
    files = sorted(f.name for f in image_files(char_folder))
    listed = tmp_path/'label_errors.txt'; listed.write_text(f'# checked by eye\n{files[0]}\n')
    out = tmp_path/'out'
    cross_val.main([str(char_folder), '--folds', '2', '--minutes', '0.1', '--exclude', str(listed), '--set', 'epochs=1', '--out', str(out)])
    rows = [json.loads(line) for line in (out/'per_image.jsonl').read_text().splitlines()]
    assert sorted(r['file'] for r in rows) == files
    for k in (0, 1):
        never_trained = set((out/f'part{k}'/'exclude.txt').read_text().split())
        assert {r['file'] for r in rows if r['part'] == k} | {files[0]} == never_trained
        assert (out/f'part{k}'/'model'/'model.onnx').exists()
        budget = json.loads((out/f'part{k}'/'model'/'metrics.json').read_text())['budget']
        assert budget['scoring_seconds'] > 0 and budget['seconds_per_reading'] > 0  # measured before training, paid from the budget
    res = json.loads((out/'cross_val.json').read_text())
    right = sum(r['read'] == r['label'] for r in rows)
    assert res['n'] == 40 and res['accuracy'] == round(right / 40, 4) and res['n_unlisted'] == 39 and res['listed'] == [files[0]]
    assert len(res['mistakes']) == 40 - right and res['calibration']['n'] == 40
    assert json.loads(capsys.readouterr().out.splitlines()[-1])['accuracy'] == res['accuracy']


def test_too_few_images_for_the_parts_fail_clearly(char_folder, tmp_path):
    with pytest.raises(SystemExit, match='at least 2'): cross_val.main([str(char_folder), '--folds', '1'])
    with pytest.raises(SystemExit, match='no images'): cross_val.main([str(tmp_path)])

"The few-shot benchmark end to end on a tiny synthetic scheme: a learning curve, the zero-label reader, ddddocr, the plot."
import json
import subprocess
import sys

import pytest

from conftest import BIN, ROOT, write_captchas

sys.path.insert(0, str(ROOT/'benchmarks'))
import few_shot  # noqa: E402
import few_shot_table  # noqa: E402


def test_split_keeps_repeats_of_a_label_together(tmp_path):
    from captcha_nb.core import label_from_path
    folder = write_captchas(tmp_path/'s', n=60)
    for f in list(folder.iterdir())[:10]: (folder/f'{label_from_path(f)}_r.png').write_bytes(f.read_bytes())  # repeats
    test, pool = few_shot.split(folder)
    assert {label_from_path(f) for f in test}.isdisjoint({label_from_path(f) for f in pool}) and len(test) + len(pool) == 70
    assert few_shot.split(folder) == (test, pool)  # the same every time


def test_few_shot_benchmark_runs_end_to_end(tiny_captcha_model, tmp_path):
    """A point of the curve, the zero-label reader, ddddocr, the tables and plots, --rescore; one size and one view, to keep
    CI short (`test_trust` covers views)"""
    pytest.importorskip('ddddocr', reason='ddddocr is in the bench extra (pip install -e .[bench])')
    folder = write_captchas(tmp_path/'scheme', n=60)
    out = tmp_path/'out'
    r = subprocess.run([BIN/'python', 'benchmarks/few_shot.py', folder, '--n', '12', '--minutes', '0.3', '--reader', tiny_captcha_model,
                        '--out', out, '--train-args', '--views 1'], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{')]
    assert [row['n'] for row in rows if row['reader'] == 'captcha_nb'] == [12]
    assert len([row for row in rows if row['reader'] == 'ddddocr']) == 4 and any(row['reader'] == 'general reader' for row in rows)
    assert all(0 <= row['seq_acc'] <= 1 and row['n_test'] == rows[0]['n_test'] > 0 for row in rows)
    assert (out/'few_shot.png').stat().st_size > 10_000 and len((out/'results.jsonl').read_text().splitlines()) == len(rows)
    runs = few_shot_table.load([out])
    table = few_shot_table.table(runs).splitlines()
    assert table[0].startswith('| scheme | test images | ddddocr') and '12 labels' in table[0] and len(table) == 3
    best = max(row['seq_acc'] for row in rows if row['reader'] == 'ddddocr')
    assert few_shot_table.pct(best, rows[0]['n_test']) in table[2]  # a share printed from its count
    few_shot_table.plot(runs, tmp_path/'bars.png', n=12)
    assert (tmp_path/'bars.png').stat().st_size > 10_000
    few_shot_table.plot_curve(runs, tmp_path/'curve.png')  # 0 (the general reader) and 12 labels, ddddocr dashed
    assert (tmp_path/'curve.png').stat().st_size > 10_000
    fine = [row for row in rows if row['reader'] == 'captcha_nb']
    assert all(row['fitted_on'] > 0 and set(row['confidence_map']) == {'slope', 'bias'} and row['views'] == 1 for row in fine)  # what calibrated it
    trust = few_shot_table.trust_table(runs, n=12).splitlines()
    cmap = fine[-1]['confidence_map']
    assert len(trust) == 3 and f"({cmap['slope']}, {cmap['bias']})" in trust[2] and f"{fine[-1]['fitted_on']} images; 1 view" in trust[2]
    # --rescore: the same runs scored again, nothing trained
    trained = (out/'n12'/'model.onnx').stat().st_mtime
    again = subprocess.run([BIN/'python', 'benchmarks/few_shot.py', folder, '--n', '12', '--reader', tiny_captcha_model, '--out', out,
                            '--no-ddddocr', '--rescore'], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    redo = [json.loads(line) for line in again.stdout.splitlines() if line.startswith('{')]
    assert [row['n'] for row in redo if row.get('rescored')] == [12] and (out/'n12'/'model.onnx').stat().st_mtime == trained
    assert redo[-1]['seq_acc'] == fine[-1]['seq_acc']  # the same model and images: the same score
    missing = subprocess.run([BIN/'python', 'benchmarks/few_shot.py', folder, '--n', '30', '--reader', tiny_captcha_model, '--out', out,
                              '--no-ddddocr', '--rescore'], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode != 0 and 'no ' in missing.stderr and 'n30' in missing.stderr


def test_few_shot_says_what_is_missing(tmp_path):
    r = subprocess.run([BIN/'python', 'benchmarks/few_shot.py', write_captchas(tmp_path/'s', n=20), '--reader', tmp_path/'none'],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and 'no general reader' in r.stderr


def test_temperature_fit_scores_the_validation_part(tiny_captcha_model, tmp_path):
    "benchmarks/temperature_fit.py: the best single temperature and fitted ones, on the pool after the training images"
    folder = write_captchas(tmp_path/'scheme', n=60)
    r = subprocess.run([BIN/'python', 'benchmarks/temperature_fit.py', tiny_captcha_model/'model.onnx', folder, '--n-train', '10',
                        '--draws', '3', '--size', '5', '--prior-scale', '4'], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    row = json.loads(r.stdout.strip().splitlines()[-1])
    test, pool = few_shot.split(folder)
    assert row['n_valid'] == min(len(test), len(pool) - 10) and row['draws'] == 3 and row['size'] == 5
    assert 0.25 <= row['best_T'] <= 8 and all(0 <= row[k]['mean_ece'] <= 1 and 0.25 <= row[k]['median_T'] <= 8
                                              for k in ('fit_temperature', 'true_label_nll', 'temperature_and_map', 'temperature_and_map_prior_4'))
    assert 0 <= row['mean_confidence_at_T1'] <= 1
    assert len(row['median_map']) == 2 and row['median_map'][0] > 0


def test_confidence_map_scores_each_calibration_step(tiny_captcha_model, tmp_path):
    "benchmarks/confidence_map.py: the test part's ECE raw, with T only, with T and the views, as served, the same answers each time"
    folder = write_captchas(tmp_path/'scheme', n=40)
    r = subprocess.run([BIN/'python', 'benchmarks/confidence_map.py', tiny_captcha_model, folder], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    row = json.loads(r.stdout.strip().splitlines()[-1])
    test, _ = few_shot.split(folder)
    assert row['n'] == len(test) and 0 <= row['seq_acc'] <= 1 and len(row['confidence_map']) == 2
    assert row['views'] == 7 and 'temperature_and_map' not in row  # the map was fitted on the views' confidence: served with them
    assert all(0 <= row[k]['ece'] <= 1 and 0 <= row[k]['mean_confidence'] <= 1 for k in ('raw', 'temperature_only', 'temperature_and_views', 'served'))


def test_views_scores_each_number_of_views(tiny_captcha_model, tmp_path):
    "benchmarks/views.py: on pool images after the training ones, with 1, 3 and 7 views (9 with two more moves), the accuracy and a ranking score for each"
    folder = write_captchas(tmp_path/'scheme', n=40)
    r = subprocess.run([BIN/'python', 'benchmarks/views.py', tiny_captcha_model, folder, '--n-train', '5', '--views', '1,3,7'],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    row = json.loads(r.stdout.strip().splitlines()[-1])
    _, pool = few_shot.split(folder)
    assert row['n'] == len(pool) - 5
    for v in (1, 3, 7):
        auroc = row[f'views_{v}']['auroc']
        assert 0 <= row[f'views_{v}']['seq_acc'] <= 1 and 0 <= row[f'views_{v}']['keep_90'] <= 1 and (auroc is None or 0 <= auroc <= 1)
    bad = subprocess.run([BIN/'python', 'benchmarks/views.py', tiny_captcha_model, folder, '--n-train', '5', '--views', '9'],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and '--views: each from 1 to 7' in bad.stderr
    more = subprocess.run([BIN/'python', 'benchmarks/views.py', tiny_captcha_model, folder, '--n-train', '5', '--views', '9',
                           '--more-moves', '0,0,0.9; 0,0,1.1'], capture_output=True, text=True, cwd=ROOT)
    assert more.returncode == 0, more.stderr[-3000:]
    row = json.loads(more.stdout.strip().splitlines()[-1])
    assert row['more_moves'] == [[0, 0, 0.9], [0, 0, 1.1]] and 0 <= row['views_9']['seq_acc'] <= 1


def test_table_prints_a_share_from_its_count():
    "Rows keep 4 digits (78 of 172 is 0.4535): the table prints 45.3 %, what 78/172 is, not the 45.4 % of the rounded value"
    assert few_shot_table.pct(0.4535, 172) == '45.3 %' and few_shot_table.pct(0.4535) == '45.4 %' and few_shot_table.pct(None, 172) == ''

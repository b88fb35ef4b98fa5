"""Per-class JSON from the test metrics, and the class-wise plot."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from analysis_helpers import REPO
from mmengine.runner import Runner

from mmnpe.analysis import (classwise_table, frequency_bands, load_config,
                            load_per_class, plot_classwise)
from mmnpe.functional import load_class_counts


def _run(*args):
    out = subprocess.run([sys.executable, *map(str, args)],
                         capture_output=True,
                         text=True,
                         cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def _runner_test(config, ckpt, work_dir, **options):
    cfg = load_config(config, options)
    cfg.work_dir = str(work_dir)
    cfg.load_from = ckpt
    return Runner.from_cfg(cfg).test()


def test_bands_closed_form():
    counts = [5, 500, 25, 150, 10, 60]
    assert frequency_bands(counts, 'cls') == [('Many', 0, 2), ('Medium', 2, 4),
                                              ('Few', 4, 6)]
    # No class above 100: no Many band; thresholds are arguments.
    assert frequency_bands([90, 30, 3], 'cls') == [('Medium', 0, 2),
                                                   ('Few', 2, 3)]
    assert frequency_bands([90, 30, 3], 'cls', 50, 10) == [('Many', 0, 1),
                                                           ('Medium', 1, 2),
                                                           ('Few', 2, 3)]
    # Segmentation: thirds of the sorted classes.
    assert frequency_bands(range(7),
                           'seg') == [('Many', 0, 3), ('Medium', 3, 5),
                                      ('Few', 5, 7)]
    with pytest.raises(ValueError, match='few_threshold'):
        frequency_bands([1, 2], 'seg', 10, 20)


def test_cls_per_class_json_and_bands_match_the_metric(cls_npe, tmp_path):
    config, ckpt = cls_npe
    metrics, files = {}, []
    for scale in (0.0, 1.0):
        path = tmp_path / f'cls_{scale:g}.json'
        metrics[scale] = _runner_test(
            config, ckpt, tmp_path / f'w{scale:g}', **{
                'model.head.scale_factor': scale,
                'test_evaluator.per_class_file': str(path)
            })
        files.append(str(path))
    records = [load_per_class(f) for f in files]
    rec = records[1]
    assert rec['task'] == 'cls' and rec['count_kind'] == 'images'
    assert rec['classes'] == [str(i) for i in range(10)]
    assert rec['per_class']['accuracy'] == metrics[1.0]['lt/per_class']
    assert rec['summary']['top1'] == metrics[1.0]['lt/top1']

    table = classwise_table(records, ['CE-like', 'NPE-LA'])
    counts = np.array(rec['train_class_counts'])
    order = np.argsort(-counts, kind='stable')
    assert table['counts'] == counts[order].tolist()
    assert table['classes'] == [rec['classes'][i] for i in order]
    for run, scale in zip(table['runs'], (0.0, 1.0)):
        assert run['values'] == [
            metrics[scale]['lt/per_class'][i] for i in order
        ]
        # The shaded bands are the metric's own Many / Medium / Few.
        for band in ('Many', 'Medium', 'Few'):
            assert run['band_means'][band] == pytest.approx(
                metrics[scale][f'lt/{band.lower()}'], abs=1e-9)
    fig = plot_classwise(table, str(tmp_path / 'cls.png'))
    assert len(fig.axes) == 2
    assert (tmp_path / 'cls.png').read_bytes()[:4] == b'\x89PNG'


def test_seg_metric_writes_per_class_json_and_cli_plots(seg_npe, tmp_path):
    config, ckpt = seg_npe
    # What `tools/test.py CONFIG CKPT --cfg-options
    # test_evaluator.per_class_file=...` runs.
    a = tmp_path / 'stock.json'
    _runner_test(
        config, ckpt, tmp_path / 'wa', **{
            'model.scale_factor': 0.0,
            'test_evaluator.per_class_file': str(a)
        })
    b = tmp_path / 'npe.json'
    metrics = _runner_test(
        config, ckpt, tmp_path / 'wb', **{
            'model.scale_factor': 1.0,
            'test_evaluator.per_class_file': str(b)
        })
    rec_b = load_per_class(str(b))
    classes = rec_b['classes']
    assert rec_b['task'] == 'seg' and rec_b['train_class_counts'] is None
    for key in ('IoU', 'Acc', 'Dice'):
        for c, name in enumerate(classes):
            value = rec_b['per_class'][key][c]
            stock = metrics[f'{key}.{name}']
            assert value == stock or (value is None and np.isnan(stock))
    assert rec_b['summary']['mIoU'] == pytest.approx(float(metrics['mIoU']))

    # Results without counts: the counts file of the class-counts tool.
    counts = [900, 40, 300, 2, 60, 7]
    counts_file = tmp_path / 'counts.json'
    counts_file.write_text(
        json.dumps(dict(kind='pixels', classes=classes, counts=counts)))
    out = tmp_path / 'cw.png'
    _run(
        osp.join(REPO, 'tools/analysis/classwise.py'), a, b, '--labels',
        'stock', 'NPE-LA', '--metric', 'Acc', '--class-counts', counts_file,
        '--out', out)
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with open(tmp_path / 'cw.json') as f:
        table = json.load(f)
    order = [0, 2, 4, 1, 5, 3]
    assert table['counts'] == [counts[i] for i in order]
    assert table['classes'] == [classes[i] for i in order]
    assert [r['label'] for r in table['runs']] == ['stock', 'NPE-LA']
    assert table['runs'][1]['values'] == [
        rec_b['per_class']['Acc'][i] for i in order
    ]
    assert [(x['name'], x['start'], x['stop'])
            for x in table['bands']] == [('Many', 0, 2), ('Medium', 2, 4),
                                         ('Few', 4, 6)]


def _record(tmp_path, name, **overrides):
    rec = dict(
        format='mmnpe.per_class/1',
        task='cls',
        classes=['a', 'b', 'c'],
        train_class_counts=[5, 300, 50],
        per_class=dict(accuracy=[10.0, 90.0, None]))
    rec.update(overrides)
    path = tmp_path / name
    path.write_text(json.dumps(rec))
    return load_per_class(str(path))


def test_bad_inputs_are_clear_errors(tmp_path):
    ok = _record(tmp_path, 'ok.json')
    table = classwise_table([ok])
    assert table['classes'] == ['b', 'c', 'a']
    assert table['runs'][0]['values'] == [90.0, None, 10.0]
    assert table['runs'][0]['band_means'] == dict(Many=90.0, Few=10.0)
    other = _record(tmp_path, 'other.json', classes=['a', 'b', 'd'])
    with pytest.raises(ValueError, match='compare runs on one data set'):
        classwise_table([ok, other])
    with pytest.raises(ValueError, match='one entry per result file'):
        classwise_table([ok], labels=['x', 'y'])
    with pytest.raises(ValueError, match="no per-class 'IoU'"):
        classwise_table([ok], metric='IoU')
    bare = _record(tmp_path, 'bare.json', train_class_counts=None)
    with pytest.raises(ValueError, match='--class-counts'):
        classwise_table([bare])
    assert classwise_table([bare],
                           class_counts=[1, 2,
                                         3])['classes'] == ['c', 'b', 'a']
    (tmp_path / 'x.json').write_text(json.dumps(dict(mIoU=3)))
    with pytest.raises(ValueError, match='not a per-class result file'):
        load_per_class(str(tmp_path / 'x.json'))
    (tmp_path / 'c.json').write_text(
        json.dumps(
            dict(kind='pixels', classes=['a', 'x', 'c'], counts=[1, 2, 3])))
    # The tool reads --class-counts with the package's one reader.
    with pytest.raises(ValueError, match="--class-counts.*index 1: 'x'"):
        load_class_counts(
            str(tmp_path / 'c.json'), ['a', 'b', 'c'], name='--class-counts')
    counts = load_class_counts(str(tmp_path / 'c.json'), ['a', 'x', 'c'])
    with pytest.raises(ValueError, match='class_counts must have 3 entries'):
        classwise_table([bare], class_counts=counts + [4])

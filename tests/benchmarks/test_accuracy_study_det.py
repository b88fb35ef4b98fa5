"""The accuracy study's detection table end to end on a minimal setting
(one seed, two iterations per training, a tiny LVIS-format set)."""
import json
import os.path as osp
import runpy

import pytest

pytest.importorskip('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'accuracy_study.py')


def test_minimal_detection_study(tmp_path):
    import torch
    study = runpy.run_path(SCRIPT, run_name='accuracy_study')
    md, js = tmp_path / 'study.md', tmp_path / 'study.json'
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = study['main']([
            '--workers', '1', '--seeds', '0', '--cls-methods', '--seg-methods',
            '--det-methods', 'CE', 'LA post-hoc', 'NPE-LA',
            'repeat-factor sampling', '--det-iters', '2', '--det-pem-iters',
            '2', '--det-num-train', '20', '--det-val-per-class', '1',
            '--out-dir',
            str(tmp_path / 'work'), '--det-md',
            str(md), '--det-json',
            str(js), '--md',
            str(tmp_path / 'not_written.md'), '--json',
            str(tmp_path / 'not_written.json')
        ])
    finally:
        torch.set_num_threads(threads)
    records = {r['method']: r for r in result['records']}
    assert set(records) == {
        'CE', 'LA post-hoc tau=1', 'NPE-LA alpha=1', 'NPE-LA alpha swept',
        'repeat-factor sampling'
    }
    assert all(r['task'] == 'det' for r in records.values())
    for r in records.values():
        assert set(r['metrics']) == {'AP', 'APr', 'APc', 'APf'}
        for v in r['metrics'].values():
            assert v is None or 0 <= v <= 100
    swept = records['NPE-LA alpha swept']
    assert swept['scale'] in study['DET_SCALES']
    if swept['scale'] == 1.0:
        assert swept['metrics'] == records['NPE-LA alpha=1']['metrics']
    table = md.read_text()
    assert '**synthetic LVIS**' in table
    for row in ('| CE |', '| repeat-factor sampling |',
                '| LA post-hoc tau=1 |', '| NPE-LA alpha=1 |',
                '| NPE-LA alpha swept |'):
        assert row in table
    saved = json.loads(js.read_text())
    assert not osp.isabs(saved['settings']['det_root'])
    # A detection-only run leaves the classification / segmentation files.
    assert not (tmp_path / 'not_written.md').exists()
    assert not (tmp_path / 'not_written.json').exists()


def test_bad_detection_method_names_the_flag(capsys):
    study = runpy.run_path(SCRIPT, run_name='accuracy_study')
    with pytest.raises(SystemExit):
        study['parse_args'](['--det-methods', 'CE', 'Focal'])
    assert '--det-methods must be among' in capsys.readouterr().err

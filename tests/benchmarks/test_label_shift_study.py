"""The accuracy study's label-shift part (--label-shift) end to end on a
minimal setting: one seed, one epoch, CE and post-hoc LA on DigitsLT."""
import json
import os.path as osp
import runpy

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'accuracy_study.py')


def test_minimal_label_shift_study(tmp_path):
    study = runpy.run_path(SCRIPT, run_name='accuracy_study')
    md, js = tmp_path / 'ls.md', tmp_path / 'ls.json'
    result = study['main']([
        '--label-shift', '--workers', '1', '--seeds', '0', '--rhos', '10',
        '--cls-epochs', '1', '--ls-cls-methods', 'CE', 'LA post-hoc',
        '--ls-seg-methods', '--shift-rhos', '10', '--out-dir',
        str(tmp_path / 'work'), '--ls-md',
        str(md), '--ls-json',
        str(js)
    ])
    records = result['records']
    shifts = ['none', 'forward 10', 'backward 10']
    assert [(r['method'], r['shift']) for r in records
            ] == [(m, s) for m in ('CE', 'LA post-hoc') for s in shifts]
    for r in records:
        assert r['setting'] == 'DigitsLT rho=10'
        for row in ('model', 'calibrated', 'em', 'oracle'):
            assert 0 <= r['rows'][row]['top1'] <= 100
        assert 'l1' in r['estimates']['em']
    # BCTS absorbs post-hoc LA's constant offset: after calibration CE and
    # LA are the same model.
    ce, la = records[0], records[3]
    assert ce['rows']['em']['top1'] == pytest.approx(la['rows']['em']['top1'])
    table = md.read_text()
    assert '| CE | EM + BCTS |' in table
    assert '| LA post-hoc | oracle pi_t, target_prior key |' in table
    assert '| CE | oracle pi_t, target_prior key |' not in table
    assert 'forward 10 | backward 10 |' in table
    saved = json.loads(js.read_text())
    assert len(saved['records']) == 6


def test_label_shift_method_names_are_checked(capsys):
    study = runpy.run_path(SCRIPT, run_name='accuracy_study')
    with pytest.raises(SystemExit):
        study['parse_args'](['--label-shift', '--ls-cls-methods', 'IWB'])
    assert '--ls-cls-methods must be among' in capsys.readouterr().err

"""The accuracy study's machinery end to end on a minimal setting (one
seed, a couple of iterations, one cls and one seg method), and
docs/results.md holding the committed study table verbatim."""
import json
import math
import os.path as osp
import runpy

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'accuracy_study.py')


@pytest.fixture(scope='module')
def study():
    return runpy.run_path(SCRIPT, run_name='accuracy_study')


def test_minimal_study_end_to_end(study, tmp_path):
    page = tmp_path / 'results.md'
    page.write_text(f'# x\n\n{study["BEGIN"]}\nold\n{study["END"]}\n\nend\n')
    md, js = tmp_path / 'study.md', tmp_path / 'study.json'
    result = study['main']([
        '--workers', '1', '--seeds', '0', '--rhos', '10', '--cls-epochs', '1',
        '--seg-iters', '2', '--seg-pem-iters', '2', '--cls-methods',
        'NPE-LA K=1', '--seg-methods', 'NPE-LA linear', '--seg-num-train', '4',
        '--seg-num-val', '2', '--det-methods', '--out-dir',
        str(tmp_path / 'work'), '--md',
        str(md), '--json',
        str(js), '--doc',
        str(page)
    ])
    records = {(r['setting'], r['method']): r for r in result['records']}
    # The CE baseline is trained for the PEM and reported with it.
    assert set(records) == {('DigitsLT rho=10', 'NPE-LA K=1'),
                            ('synthetic seg', 'CE'),
                            ('synthetic seg', 'NPE-LA linear, alpha=1'),
                            ('synthetic seg', 'NPE-LA linear, alpha swept')}
    npe = records[('DigitsLT rho=10', 'NPE-LA K=1')]
    # The test split is balanced: top-1 is balanced accuracy.
    assert npe['metrics']['top1'] == pytest.approx(npe['metrics']['balanced'])
    for key in ('top1', 'many', 'medium', 'few'):
        assert 0 <= npe['metrics'][key] <= 100
    assert -1 <= npe['pearson'] <= 1
    assert npe['train_counts'][0] > npe['train_counts'][-1]
    swept = records[('synthetic seg', 'NPE-LA linear, alpha swept')]
    alpha1 = records[('synthetic seg', 'NPE-LA linear, alpha=1')]
    assert swept['scale'] in result['settings']['scales']
    assert swept['pearson'] == alpha1['pearson']
    assert math.isfinite(alpha1['pearson'])
    if swept['scale'] == 1.0:
        assert swept['metrics'] == alpha1['metrics']
    if swept['scale'] == 0.0:
        # alpha = 0 is the frozen CE model.
        ce = records[('synthetic seg', 'CE')]
        assert swept['metrics'] == ce['metrics']
    for r in records.values():
        if r['task'] == 'seg':
            assert 0 <= r['metrics']['mIoU'] <= 100
            assert len(r['metrics']['IoU']) == 6

    table = md.read_text()
    for row in ('| NPE-LA K=1 |', '| CE |', '| NPE-LA linear, alpha=1 |',
                '| NPE-LA linear, alpha swept |'):
        assert row in table
    assert 'over 1 training seed(s) (0)' in table
    assert study['doc_block'](str(page)) == table
    assert page.read_text().startswith(f'# x\n\n{study["BEGIN"]}\n')
    assert page.read_text().endswith(f'{study["END"]}\n\nend\n')
    saved = json.loads(js.read_text())
    assert len(saved['records']) == 4
    assert all('checkpoint' not in r for r in saved['records'])
    assert not osp.isabs(saved['settings']['data_root'])


def test_bad_method_names_the_flag(study, capsys):
    with pytest.raises(SystemExit):
        study['parse_args'](['--cls-methods', 'CE', 'Focal'])
    assert "--cls-methods must be among" in capsys.readouterr().err


def test_results_page_holds_the_committed_study_table(study):
    table = open(osp.join(REPO, 'benchmarks', 'accuracy_study.md')).read()
    page = osp.join(REPO, 'docs', 'results.md')
    assert study['doc_block'](page) == table


def test_make_study_writes_the_results_page():
    with open(osp.join(REPO, 'Makefile')) as f:
        makefile = f.read()
    assert '--doc docs/results.md' in makefile

"""Where the accuracy study writes, and what each file records: every study
(classification and segmentation, detection, label shift) has its own
files, a run writes only the files of the parts it runs, and each JSON and
table carries the commit, the command and the machine."""
import json
import os.path as osp
import re
import runpy

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'accuracy_study.py')


@pytest.fixture(scope='module')
def study():
    return runpy.run_path(SCRIPT, run_name='accuracy_study')


def test_each_study_has_its_own_default_files(study):
    args = study['parse_args'](['--det-methods'])
    files = [
        args.md, args.json, args.det_md, args.det_json, args.ls_md,
        args.ls_json
    ]
    assert len(set(files)) == len(files), files
    names = [osp.relpath(f, REPO) for f in files]
    assert names == [
        'benchmarks/accuracy_study.md', 'benchmarks/accuracy_study.json',
        'benchmarks/detection_study.md', 'benchmarks/detection_study.json',
        'benchmarks/label_shift_study.md', 'benchmarks/label_shift_study.json'
    ]


def _fake_run(records):
    """run_study's result for ``records``, without training anything."""

    def run_study(settings, out_dir, workers=1):
        settings = dict(
            settings,
            seg_train_pixels=[3, 2, 1],
            seg_classes=['a', 'b', 'c'],
            det_train_instances=[9, 1],
            det_frequency=['f', 'r'],
            cls_missing=[])
        return dict(
            settings=settings,
            records=[r for r in records if r['task'] in _tasks(settings)],
            wall_seconds=1.0,
            workers=workers,
            load_average_start=(0., 0., 0.),
            load_average_end=(0., 0., 0.),
            machine=study_machine())

    return run_study


def _tasks(settings):
    return {
        t
        for t, key in (('cls', 'cls_methods'), ('seg', 'seg_methods'),
                       ('det', 'det_methods')) if settings[key]
    }


def study_machine():
    return dict(cpu_count=2, processor='x86_64', python='3.11.7', gpu=None)


SEG = dict(
    task='seg',
    setting='synthetic seg',
    method='CE',
    seed=0,
    metrics=dict(mIoU=20.0, mDice=30.0, mAcc=40.0, aAcc=80.0))
DET = dict(
    task='det',
    setting='synthetic LVIS',
    method='CE',
    seed=0,
    metrics=dict(AP=10.0, APr=1.0, APc=2.0, APf=3.0))


def _outputs(tmp_path):
    return [
        '--md',
        str(tmp_path / 'acc.md'), '--json',
        str(tmp_path / 'acc.json'), '--det-md',
        str(tmp_path / 'det.md'), '--det-json',
        str(tmp_path / 'det.json')
    ]


def test_detection_only_run_leaves_the_accuracy_study(study, tmp_path,
                                                      monkeypatch):
    """The detection guide's command (--cls-methods --seg-methods with
    detection methods) writes the detection files only."""
    main = study['main']
    monkeypatch.setitem(main.__globals__, 'run_study', _fake_run([SEG, DET]))
    main([
        '--seeds', '0', '--cls-methods', '--seg-methods', '--det-methods', 'CE'
    ] + _outputs(tmp_path))
    assert not (tmp_path / 'acc.md').exists()
    assert not (tmp_path / 'acc.json').exists()
    saved = json.loads((tmp_path / 'det.json').read_text())
    assert [r['task'] for r in saved['records']] == ['det']
    assert '**synthetic LVIS**' in (tmp_path / 'det.md').read_text()


def test_full_run_splits_its_records_by_study(study, tmp_path, monkeypatch):
    main = study['main']
    monkeypatch.setitem(main.__globals__, 'run_study', _fake_run([SEG, DET]))
    main([
        '--seeds', '0', '--cls-methods', '--seg-methods', 'CE',
        '--det-methods', 'CE'
    ] + _outputs(tmp_path))
    acc = json.loads((tmp_path / 'acc.json').read_text())
    det = json.loads((tmp_path / 'det.json').read_text())
    assert [r['task'] for r in acc['records']] == ['seg']
    assert [r['task'] for r in det['records']] == ['det']
    assert 'synthetic LVIS' not in (tmp_path / 'acc.md').read_text()


def test_json_and_table_record_commit_command_and_machine(
        study, tmp_path, monkeypatch):
    main = study['main']
    monkeypatch.setitem(main.__globals__, 'run_study', _fake_run([SEG]))
    argv = [
        '--seeds', '0', '--cls-methods', '--seg-methods', 'CE',
        '--det-methods', '--out-dir',
        osp.join(REPO, 'work_dirs', 'x')
    ] + _outputs(tmp_path)
    main(argv)
    saved = json.loads((tmp_path / 'acc.json').read_text())
    prov = saved['provenance']
    head = study['_git']('rev-parse', 'HEAD')
    assert re.fullmatch(r'[0-9a-f]{40}', head)
    assert prov['commit'] == head
    assert isinstance(prov['uncommitted_changes'], bool)
    # The command as run, paths inside the repository made relative.
    assert prov['command'].startswith(
        'python benchmarks/accuracy_study.py --seeds 0 --cls-methods '
        "--seg-methods CE --det-methods --out-dir work_dirs/x --md ")
    assert saved['machine'] == study_machine()
    table = (tmp_path / 'acc.md').read_text()
    assert f'at commit {head[:12]}' in table
    assert prov['command'] in table


def test_machine_names_cpu_libraries_and_gpu(study):
    m = study['machine']()
    for key in ('cpu_count', 'processor', 'cpu_model', 'system', 'python',
                'torch', 'mmcv', 'mmengine', 'mmseg', 'mmpretrain', 'mmdet',
                'gpu'):
        assert key in m, key
    import torch
    assert m['torch'] == torch.__version__
    assert (m['gpu'] is None) == (not torch.cuda.is_available())


def test_paths_outside_the_repository_are_not_written(study, tmp_path):
    """A study run with --out-dir outside the repository records its data
    folders relative to the out-dir, not as a climb out of the repo."""
    portable = study['_portable_path']
    out = tmp_path / 'study'
    assert portable(str(out / 'data' / 'synthetic_lt'),
                    str(out)) == osp.join('<out-dir>', 'data', 'synthetic_lt')
    assert portable(osp.join(REPO, 'work_dirs',
                             'x')) == osp.join('work_dirs', 'x')
    assert '..' not in portable(str(tmp_path / 'elsewhere'), str(out))

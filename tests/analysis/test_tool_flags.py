"""The analysis tools' common flags, as docs/user_guides/analysis_tools.md
lists them: every tool takes --cfg-options; the tools that run a model take
--device, whose default works on a CPU-only machine; classwise.py takes
the class counts from a config's training set (--config, --cfg-options)."""
import importlib.util
import json
import os.path as osp
import re
import sys

import pytest
import torch
from analysis_helpers import REPO, seg_config

TOOLS = osp.join(REPO, 'tools', 'analysis')
# tool -> (positional arguments, runs a model)
TOOL_ARGS = {
    'prior_recovery.py': (['CONFIG', 'CKPT'], True),
    'scale_sweep.py': (['CONFIG', 'CKPT', '--scales', '0', '1'], True),
    'label_shift.py': (['CONFIG', 'CKPT'], True),
    'class_counts.py': (['CONFIG'], False),
    'classwise.py': (['RUN.json'], False),
}


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'analysis_{name[:-3]}',
                                                  osp.join(TOOLS, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(name, argv, monkeypatch):
    """The tool's parsed arguments for ``argv`` (its own parser)."""
    tool = _tool(name)
    if hasattr(tool, 'build_parser'):
        return tool.build_parser().parse_args(argv)
    monkeypatch.setattr(sys, 'argv', [name] + argv)
    return tool.parse_args()


def test_every_analysis_tool_is_listed():
    listed = sorted(
        osp.basename(p)
        for p in __import__('glob').glob(osp.join(TOOLS, '*.py')))
    assert listed == sorted(TOOL_ARGS)


@pytest.mark.parametrize('name', sorted(TOOL_ARGS))
def test_flags_are_those_the_page_lists(name, monkeypatch):
    argv, runs_model = TOOL_ARGS[name]
    extra = ['--config', 'CONFIG'] if name == 'classwise.py' else []
    args = _parse(name, argv + extra + ['--cfg-options', 'a.b=1'], monkeypatch)
    assert args.cfg_options == {'a.b': 1}
    assert hasattr(args, 'device') == runs_model
    with open(osp.join(REPO, 'docs', 'user_guides', 'analysis_tools.md')) as f:
        page = f.read()
    row = re.search(rf'^\| `{re.escape(name)}` \| (.*?) \| (.*?) \|$', page,
                    re.M)
    assert row, f'analysis_tools.md has no flags row for {name}'
    assert row.group(1).startswith('yes')
    assert row.group(2).startswith('yes' if runs_model else 'no')


@pytest.mark.parametrize(
    'name', [n for n, (_, model) in sorted(TOOL_ARGS.items()) if model])
def test_device_default_works_without_a_gpu(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    args = _parse(name, TOOL_ARGS[name][0], monkeypatch)
    assert args.device == 'cpu'
    torch.zeros(1, device=args.device)  # a device this machine has


def _bare_record(path, classes):
    """A per-class result file written without training counts."""
    path.write_text(
        json.dumps(
            dict(
                format='mmnpe.per_class/1',
                task='seg',
                classes=classes,
                train_class_counts=None,
                per_class=dict(IoU=[float(i) for i in range(len(classes))]))))
    return str(path)


def test_classwise_counts_a_config_training_set(tmp_path, synthetic_root,
                                                monkeypatch):
    from mmengine.config import Config

    from mmnpe.engine import build_counting_dataset, count_dataset_classes
    config = seg_config(tmp_path, synthetic_root)
    cfg = Config.fromfile(config)
    want = count_dataset_classes(build_counting_dataset(cfg))
    record = _bare_record(tmp_path / 'run.json', want['classes'])
    out = tmp_path / 'cw.png'
    tool = _tool('classwise.py')
    # --cfg-options reaches the config: the training set is elsewhere.
    monkeypatch.setattr(sys, 'argv', [
        'classwise.py', record, '--metric', 'IoU', '--config',
        str(tmp_path / 'x.py'), '--out',
        str(out)
    ])
    with open(tmp_path / 'x.py', 'w') as f:
        f.write(f'_base_ = {config!r}\n'
                "train_dataloader = dict(dataset=dict(data_root='nowhere'))\n")
    with pytest.raises(Exception):
        tool.main()
    monkeypatch.setattr(sys, 'argv', [
        'classwise.py', record, '--metric', 'IoU', '--config',
        str(tmp_path / 'x.py'), '--cfg-options',
        f'train_dataloader.dataset.data_root={synthetic_root}', '--out',
        str(out)
    ])
    tool.main()
    with open(tmp_path / 'cw.json') as f:
        table = json.load(f)
    order = sorted(
        range(len(want['counts'])), key=lambda i: -want['counts'][i])
    assert table['counts'] == [want['counts'][i] for i in order]


@pytest.mark.parametrize('argv,message', [
    (['--cfg-options', 'a=1'], '--cfg-options overrides keys of --config'),
    (['--config', 'c.py', '--class-counts', 'n.json'
      ], '--config and --class-counts both give'),
])
def test_classwise_refuses_flags_that_cannot_apply(argv, message, tmp_path,
                                                   monkeypatch, capsys):
    tool = _tool('classwise.py')
    record = _bare_record(tmp_path / 'run.json', ['a', 'b'])
    monkeypatch.setattr(sys, 'argv', ['classwise.py', record] + argv)
    with pytest.raises(SystemExit):
        tool.main()
    assert message in capsys.readouterr().err


def test_classwise_refuses_a_config_of_other_classes(tmp_path, synthetic_root,
                                                     monkeypatch):
    config = seg_config(tmp_path, synthetic_root)
    record = _bare_record(tmp_path / 'run.json', ['a', 'b'])
    monkeypatch.setattr(sys, 'argv', [
        'classwise.py', record, '--config', config, '--out',
        str(tmp_path / 'cw.png')
    ])
    with pytest.raises(ValueError, match='--config: the training set of'):
        _tool('classwise.py').main()

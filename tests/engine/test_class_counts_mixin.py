"""ClassCountsMixin (buffer, validation, checkpoints) and ClassCountsHook."""
import json
import types

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import HOOKS
from mmpretrain.registry import HOOKS as CLS_HOOKS
from mmseg.registry import HOOKS as SEG_HOOKS

from mmnpe.cls.datasets import DigitsLT
from mmnpe.engine import ClassCountsHook, ClassCountsMixin


class Probe(ClassCountsMixin, nn.Module):
    """The smallest count-using module."""

    def __init__(self, class_counts=None, num_classes=None, eps=None):
        super().__init__()
        self.init_class_counts(class_counts, num_classes, eps=eps)


def _json(tmp_path, classes, counts, name='counts.json'):
    path = tmp_path / name
    path.write_text(
        json.dumps(dict(kind='images', classes=classes, counts=counts)))
    return str(path)


def test_list_and_json_fill_a_float64_buffer_saved_in_state_dict(tmp_path):
    m = Probe([3, 1, 2], num_classes=3)
    assert m.class_counts.dtype == torch.float64
    assert m.class_counts.tolist() == [3., 1., 2.]
    assert 'class_counts' in m.state_dict()
    assert not m.class_counts_from_dataset and m.class_counts_file is None
    path = _json(tmp_path, ['a', 'b'], [5, 7])
    f = Probe(path)
    assert f.class_counts.tolist() == [5., 7.] and f.class_counts_file == path
    assert torch.allclose(f.log_class_prior(),
                          torch.tensor([5 / 12, 7 / 12]).double().log())


@pytest.mark.parametrize(
    'counts,match',
    [
        ([1, 2], 'num_classes=3'),  # wrong length
        ([1, -2, 3], r'class_counts\[1\] must be >= 0'),
        ([1, float('nan'), 3], r'class_counts\[1\] must be a finite'),
        ([1, 2, float('inf')], r'class_counts\[2\] must be a finite'),
        ([0, 0, 0], 'all zero'),
        ([4, 0, 3], r'class_counts\[1\] is 0 \(class index 1'),
    ])
def test_bad_counts_are_refused_at_build_naming_the_index(counts, match):
    with pytest.raises(ValueError, match=match):
        Probe(counts, num_classes=3)


def test_zero_count_allowed_with_explicit_eps_and_eps_validated():
    m = Probe([4, 0, 4], num_classes=3, eps=1e-6)
    assert torch.isfinite(m.log_class_prior()).all()
    with pytest.raises(ValueError, match='eps must be None or a finite'):
        Probe([1, 2], eps=-1.0)


def test_unset_counts_fail_at_use_with_the_fix_in_the_message():
    m = Probe(None, num_classes=3)
    assert m.class_counts_from_dataset and not m.has_class_counts
    with pytest.raises(RuntimeError, match="ClassCountsHook"):
        m.get_class_counts()
    m.set_class_counts([1, 2, 3])
    assert m.has_class_counts
    with pytest.raises(ValueError, match='num_classes=3'):
        m.set_class_counts([1, 2])
    with pytest.raises(ValueError, match='has 3 entries but the logits'):
        m.check_num_class_counts(4, 'the logits')


def test_buffer_follows_the_device_and_roundtrips_through_checkpoints():
    m = Probe([3, 1, 2])
    assert m.to(torch.device('meta')).class_counts.device.type == 'meta'
    # Built without C (a loss with counts from the data set): the saved
    # counts are loaded with their shape, no size-mismatch error.
    fresh = Probe(None)
    assert fresh.class_counts.shape == (0, )
    fresh.load_state_dict(Probe([3, 1, 2]).state_dict())
    assert fresh.class_counts.tolist() == [3., 1., 2.]


def test_checkpoint_counts_replace_configured_ones():
    m = Probe([1, 1, 1])
    m.load_state_dict(Probe([3, 1, 2]).state_dict())
    assert m.class_counts.tolist() == [3., 1., 2.]


# --------------------------------------------------------------------- hook
def _runner(model, train_ds=None, test_ds=None, cfg=None):
    return types.SimpleNamespace(
        model=model,
        train_dataloader=types.SimpleNamespace(dataset=train_ds),
        test_dataloader=types.SimpleNamespace(dataset=test_ds),
        val_dataloader=types.SimpleNamespace(dataset=test_ds),
        cfg=cfg)


@pytest.fixture(scope='module')
def digits():
    return DigitsLT(split='train', pipeline=[])


@pytest.mark.parametrize('registry', [SEG_HOOKS, CLS_HOOKS, HOOKS])
def test_hook_found_from_both_scopes(registry):
    assert isinstance(
        registry.build(dict(type='ClassCountsHook')), ClassCountsHook)


def test_hook_fills_dataset_modules_only(digits, tmp_path):
    model = nn.ModuleDict(
        dict(
            from_data=Probe(None),
            given=Probe([1.] * 10),
            file=Probe(
                _json(tmp_path, list(digits.metainfo['classes']), [2] * 10))))
    ClassCountsHook().before_train(_runner(model, digits))
    want = digits.metainfo['train_class_counts']
    assert model['from_data'].class_counts.tolist() == want
    # Direct count of the labels.
    labels = torch.as_tensor(digits.get_gt_labels())
    assert torch.bincount(labels, minlength=10).tolist() == want
    assert model['given'].class_counts.tolist() == [1.] * 10
    assert model['file'].class_counts.tolist() == [2.] * 10


def test_hook_refuses_a_json_with_other_class_names(digits, tmp_path):
    classes = list(digits.metainfo['classes'])
    classes[3] = 'three'
    model = Probe(_json(tmp_path, classes, [1] * 10))
    with pytest.raises(ValueError, match="index 3: 'three' in the file"):
        ClassCountsHook().before_train(_runner(model, digits))
    with pytest.raises(ValueError, match='differ from the data set'):
        ClassCountsHook().before_test(_runner(model, test_ds=digits))


def test_hook_on_resume_overwrites_with_the_same_counts(digits):
    trained = Probe(None)
    ClassCountsHook().before_train(_runner(trained, digits))
    resumed = Probe(None)
    resumed.load_state_dict(trained.state_dict())  # load happens first
    ClassCountsHook().before_train(_runner(resumed, digits))
    assert torch.equal(resumed.class_counts, trained.class_counts)
    # A checkpoint from other data: the training data set wins.
    other = Probe(None)
    other.load_state_dict(Probe([1.] * 10).state_dict())
    ClassCountsHook().before_train(_runner(other, digits))
    assert torch.equal(other.class_counts, trained.class_counts)


def test_hook_at_test_builds_the_training_set_only_for_unset_modules(digits):
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            train_dataloader=dict(
                dataset=dict(
                    type='DigitsLT',
                    split='train',
                    pipeline=[
                        dict(type='RandomCrop', crop_size=8),
                        dict(type='PackInputs')
                    ]))))
    unset, loaded = Probe(None), Probe(None)
    loaded.set_class_counts([5.] * 10)  # e.g. from the checkpoint
    test = DigitsLT(split='test', pipeline=[])
    ClassCountsHook().before_test(
        _runner(nn.ModuleList([unset, loaded]), test_ds=test, cfg=cfg))
    assert unset.class_counts.tolist() == digits.metainfo['train_class_counts']
    assert loaded.class_counts.tolist() == [5.] * 10


def test_hook_refuses_pixel_counting_at_run_time(synthetic_root):
    from mmseg.registry import DATASETS
    ds = DATASETS.build(
        dict(
            type='SyntheticLTDataset',
            data_root=synthetic_root,
            data_prefix=dict(
                img_path='img_dir/train', seg_map_path='ann_dir/train'),
            pipeline=[dict(type='LoadAnnotations')]))
    with pytest.raises(ValueError, match='tools/analysis/class_counts.py'):
        ClassCountsHook().before_train(_runner(Probe(None), ds))

"""The checkpoint check: what a load really did (after the model's own load
hooks), which tensors a run uses as they are, and what is refused."""
import logging

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import load_state_dict

from mmnpe.engine import LoadRecorder, check_load
from mmnpe.engine import checkpoint_check as module
from mmnpe.engine import required_tensors
from mmnpe.seg.losses import LogitAdjustLoss


class Grows(nn.Module):
    """A table whose load hook resizes the saved one (as ViT / Swin do for
    their position tables)."""

    def __init__(self, size):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(size))
        self.register_load_state_dict_pre_hook(self._resize)

    def _resize(self, module, state_dict, prefix, *args):
        key = prefix + 'table'
        if key in state_dict and state_dict[key].numel() != self.table.numel():
            state_dict[key] = torch.full_like(self.table, 7.)


class Head(nn.Module):

    def __init__(self, num_classes=3):
        super().__init__()
        self.fc = nn.Linear(4, num_classes)
        self.loss_decode = LogitAdjustLoss()


class Net(nn.Module):

    def __init__(self, table=5, num_classes=3, aux=True):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        self.grows = Grows(table)
        self.decode_head = Head(num_classes)
        if aux:
            self.auxiliary_head = Head(num_classes)


def _load(model, state):
    records = []
    LoadRecorder(model, records.append)
    load_state_dict(model, state, strict=False)
    assert len(records) == 1
    return records[0]


def test_records_after_the_models_own_load_hooks():
    saved = Net(table=3).state_dict()
    # A count buffer of a loss built without knowing C: (0,) in the model.
    saved['decode_head.loss_decode.class_counts'] = torch.tensor([3., 2, 1])
    model = Net(table=5)
    assert model.decode_head.loss_decode.class_counts.shape == (0, )
    record = _load(model, saved)
    # The hook resized the table, the loss took the saved counts' shape:
    # nothing is "of another shape", although the raw shapes differ.
    assert record.mismatched == [] and record.missing == []
    assert record.unexpected == [] and record.errors == []
    assert torch.equal(model.grows.table, torch.full((5, ), 7.))
    assert model.decode_head.loss_decode.class_counts.tolist() == [3, 2, 1]
    check_load(record, model, 'test', 'net.pth')  # accepted


def test_records_missing_unexpected_and_mismatched_keys():
    saved = Net(num_classes=5).state_dict()
    del saved['backbone.1.running_var']
    saved['backbone.extra'] = torch.zeros(1)
    record = _load(Net(), saved)
    assert record.missing == ['backbone.1.running_var']
    assert record.unexpected == ['backbone.extra']
    assert sorted(k for k, _, _ in record.mismatched) == [
        'auxiliary_head.fc.bias', 'auxiliary_head.fc.weight',
        'decode_head.fc.bias', 'decode_head.fc.weight'
    ]
    key, ckpt, own = sorted(record.mismatched)[-1]
    assert (ckpt, own) == ('torch.Size([5, 4])', 'torch.Size([3, 4])')
    assert 'decode_head.fc.weight' not in record.loaded
    assert 'backbone.0.weight' in record.loaded
    # The recorder detaches itself: a second load is not recorded.
    model = Net()
    calls = []
    LoadRecorder(model, calls.append)
    load_state_dict(model, Net().state_dict())
    load_state_dict(model, Net().state_dict())
    assert len(calls) == 1


def test_required_tensors_per_mode():
    model = Net()
    everything = {k
                  for k, _ in model.named_parameters()
                  } | {'backbone.1.running_mean', 'backbone.1.running_var'}
    test = required_tensors(model, 'test')
    # Predictions never read an auxiliary head or a loss.
    assert test == {
        k
        for k in everything if not k.startswith('auxiliary_head.')
    }
    assert required_tensors(model, 'resume') == everything
    # Training: only what stays as it is, the frozen parameters and the
    # statistics of frozen norm layers.
    assert required_tensors(model, 'train') == set()
    model.backbone.requires_grad_(False)
    assert required_tensors(model, 'train') == {
        'backbone.0.weight', 'backbone.0.bias', 'backbone.1.weight',
        'backbone.1.bias', 'backbone.1.running_mean', 'backbone.1.running_var'
    }
    # A frozen auxiliary head: needed while its loss reaches trainable
    # features, not once they are frozen too (the PEM setting).
    model = Net()
    model.auxiliary_head.requires_grad_(False)
    aux = {'auxiliary_head.fc.weight', 'auxiliary_head.fc.bias'}
    assert required_tensors(model, 'train') == aux
    model.backbone.requires_grad_(False)
    assert not aux & required_tensors(model, 'train')
    with pytest.raises(ValueError, match="mode must be one of"):
        required_tensors(model, 'eval')


def test_refused_when_the_prediction_would_use_random_weights():
    saved = Net().state_dict()
    saved = {k: v for k, v in saved.items() if not k.startswith('grows.')}
    model = Net()
    record = _load(model, saved)
    with pytest.raises(
            ValueError,
            match=r"checkpoint 'ckpt.pth' -> Net: 1 tensors the run uses as "
            r'they are did not load: grows.table \(not in the checkpoint\); '
            r'they would predict from their random initialisation'):
        check_load(record, model, 'test', 'ckpt.pth')
    # Training it from there is fine (mmengine's non-strict load_from) ...
    check_load(record, model, 'train', 'ckpt.pth')
    # ... unless it is frozen.
    model.grows.requires_grad_(False)
    with pytest.raises(ValueError, match=r'grows.table.*they are frozen'):
        check_load(record, model, 'train', 'ckpt.pth')
    with pytest.raises(ValueError, match=r'a resumed run continues'):
        check_load(record, model, 'resume', 'ckpt.pth')


def test_a_new_classifier_trains_and_an_unused_one_is_ignored():
    # A fine-tune to another number of classes: the head is trained.
    model = Net(num_classes=3)
    record = _load(model, Net(num_classes=5).state_dict())
    check_load(record, model, 'train', 'other.pth')
    with pytest.raises(
            ValueError,
            match=r'decode_head.fc.bias \(checkpoint torch.Size\(\[5\]\) vs '
            r'model torch.Size\(\[3\]\)\)'):
        check_load(record, model, 'test', 'other.pth')
    # A checkpoint without the auxiliary head: tests fine.
    model = Net()
    record = _load(model, Net(aux=False).state_dict())
    check_load(record, model, 'test', 'noaux.pth')


def test_nothing_loaded_is_refused_in_every_mode():
    saved = {
        'other.weight': torch.zeros(2),
        'backbone.0.weight': torch.ones(1)
    }
    model = Net()
    record = _load(model, saved)
    for mode in ('test', 'train', 'resume'):
        with pytest.raises(
                ValueError,
                match=r"not one of the model's \d+ tensors was loaded"):
            check_load(record, model, mode, 'x.pth')


def test_what_does_not_fit_is_logged(monkeypatch):
    logged = []
    monkeypatch.setattr(
        module,
        'print_log',
        lambda msg, logger=None, level=None: logged.append((msg, level)))
    saved = Net().state_dict()
    saved['decode_head.loss_decode.class_counts'] = torch.ones(3)
    model = Net()
    model.decode_head.loss_decode = nn.Identity()  # no count buffer
    check_load(_load(model, saved), model, 'test', 'la.pth')
    (msg, level), = logged
    assert level == logging.WARNING
    assert msg.startswith("checkpoint 'la.pth' -> Net: 1 of its tensors are "
                          'not loaded (the model has no such tensors in '
                          'decode_head.loss_decode)')

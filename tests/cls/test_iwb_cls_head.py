"""IWBClsHead: the loss is the classification loss plus the batch mean of
the paper's KL term, counts reach NC and a count-based loss, the KL trains
only the row norms, prediction is the plain classifier, bad arguments fail
at build time."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.cls import IWBClsHead
from mmnpe.seg import ClassBalancedLoss

COUNTS = [300, 30, 3]


def _head(**kwargs):
    cfg = dict(type='IWBClsHead', num_classes=3, in_channels=4)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 4, generator=g)
    samples = [DataSample().set_gt_label(i % 3) for i in range(n)]
    return feats, samples


def _numpy_kl(weight, feats, counts, lam, direction):
    weight, feats, counts = map(np.asarray, (weight, feats, counts))
    nc = np.log2(counts.sum() / (counts + 1.))
    cos = feats @ weight.T / np.outer(
        np.linalg.norm(feats, axis=1), np.linalg.norm(weight, axis=1))
    target = lam * nc * (1 - cos) / 2

    def softmax(v):
        e = np.exp(v - v.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    q, p = softmax(np.linalg.norm(weight, axis=1))[None], softmax(target)
    kl = (q * np.log(q / p)).sum(1) if direction == 'forward' else (
        p * np.log(p / q)).sum(1)
    return kl.mean()


@pytest.mark.parametrize('direction', ['forward', 'reverse'])
def test_loss_is_cb_loss_plus_mean_kl(direction):
    head = _head(
        class_counts=COUNTS,
        iwb_lambda=0.3,
        kl_direction=direction,
        kl_weight=2.0)
    feats, samples = _batch()
    losses = head.loss((feats, ), samples)
    assert set(losses) == {'loss', 'loss_kl'}
    w = head.fc.weight.detach().double()
    want_kl = 2.0 * _numpy_kl(w.numpy(),
                              feats.double().numpy(), COUNTS, 0.3, direction)
    assert losses['loss_kl'].item() == pytest.approx(want_kl, rel=1e-5)
    # The classification loss is the class-balanced CE of the logits.
    labels = torch.tensor([s.gt_label.item() for s in samples])
    logits = head.fc(feats)
    cb = ClassBalancedLoss(COUNTS)(logits, labels, avg_factor=len(labels))
    torch.testing.assert_close(losses['loss'], cb)


def test_ce_variant_and_paper_defaults():
    head = _head(class_counts=COUNTS, loss=dict(type='CrossEntropyLoss'))
    feats, samples = _batch()
    labels = torch.tensor([s.gt_label.item() for s in samples])
    losses = head.loss((feats, ), samples)
    torch.testing.assert_close(losses['loss'],
                               F.cross_entropy(head.fc(feats), labels))
    default = _head(class_counts=COUNTS)
    assert (default.iwb_lambda, default.kl_direction,
            default.kl_weight) == (0.15, 'forward', 1.0)
    assert isinstance(default.loss_module, ClassBalancedLoss)
    assert default.loss_module.beta == 0.9999


def test_the_kl_trains_only_the_row_norms():
    head = _head(class_counts=COUNTS)
    feats, samples = _batch()
    feats.requires_grad_(True)
    kl = head.loss((feats, ), samples)['loss_kl']
    g_w, g_b, g_x = torch.autograd.grad(
        kl, [head.fc.weight, head.fc.bias, feats], allow_unused=True)
    assert g_b is None and g_x is None
    assert torch.isfinite(g_w).all() and g_w.abs().sum() > 0
    # Along each row: the KL changes |W_i|, not W_i's direction.
    w = head.fc.weight.detach()
    along = (g_w * w).sum(1, keepdim=True) / (w * w).sum(1, keepdim=True) * w
    torch.testing.assert_close(g_w, along)


def test_counts_from_dataset_reach_the_head_and_its_loss():
    head = _head()  # class_counts=None: ClassCountsHook fills them
    assert head.class_counts_from_dataset and not head.has_class_counts
    feats, samples = _batch()
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        head.loss((feats, ), samples)
    head.set_class_counts(COUNTS)
    want = torch.tensor(COUNTS, dtype=torch.float64)
    assert torch.equal(head.class_counts, want)
    assert torch.equal(head.loss_module.class_counts, want)
    assert torch.isfinite(head.loss((feats, ), samples)['loss_kl'])
    # A loss given its own counts keeps them.
    own = _head(
        class_counts=COUNTS,
        loss=dict(type='ClassBalancedLoss', class_counts=[1, 1, 1]))
    assert torch.equal(own.loss_module.class_counts,
                       torch.ones(3, dtype=torch.float64))
    # NC from the counts, closed form.
    torch.testing.assert_close(
        _head(class_counts=COUNTS).number_coefficient(),
        torch.log2(333 / (want + 1)))


def test_explicit_head_counts_are_the_loss_counts_after_the_hook():
    """Given to the head only, the counts reach its loss, and the data set's
    counts (ClassCountsHook) cannot then replace the loss's alone: NC and
    the class-balanced weights always come from the same counts."""
    from mmnpe.engine import ClassCountsMixin
    head = _head(class_counts=COUNTS)
    want = torch.tensor(COUNTS, dtype=torch.float64)
    assert torch.equal(head.loss_module.class_counts, want)
    # What ClassCountsHook fills: modules built to take the data set's.
    wanting = [
        m for m in head.modules()
        if isinstance(m, ClassCountsMixin) and m.class_counts_from_dataset
    ]
    assert wanting == []


def test_counts_of_the_wrong_length_refused():
    with pytest.raises(
            ValueError,
            match='class_counts must have '
            'num_classes=3 entries, got 2'):
        _head(class_counts=[3, 1])


def test_predicts_with_the_plain_classifier_and_loads_a_ce_head():
    linear = MODELS.build(
        dict(type='LinearClsHead', num_classes=3, in_channels=4))
    head = _head(class_counts=COUNTS)
    missing, unexpected = head.load_state_dict(
        linear.state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == ['class_counts', 'loss_module.class_counts']
    feats, samples = _batch()
    torch.testing.assert_close(head((feats, )), linear((feats, )))
    preds = head.predict((feats, ), samples)
    torch.testing.assert_close(preds[0].pred_score,
                               F.softmax(linear.fc(feats), 1)[0])
    assert isinstance(head, LinearClsHead)


@pytest.mark.parametrize('kwargs, match', [
    (dict(iwb_lambda=0), r'iwb_lambda must be a number in \(0, 1\]'),
    (dict(iwb_lambda=1.5), r'iwb_lambda must be a number in \(0, 1\]'),
    (dict(iwb_lambda=float('nan')), r'iwb_lambda must be a number'),
    (dict(kl_direction='backward'), 'kl_direction must be one of'),
    (dict(kl_direction='KL'), 'kl_direction must be one of'),
    (dict(kl_weight=-1.), 'kl_weight must be a finite number >= 0'),
    (dict(num_classes=1), 'num_classes must be an int > 1'),
])
def test_bad_arguments_refused_when_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _head(**kwargs)


def test_lambda_one_is_allowed_and_registered_in_mmpretrain():
    assert _head(iwb_lambda=1.0).iwb_lambda == 1.0
    assert MODELS.get('IWBClsHead') is IWBClsHead

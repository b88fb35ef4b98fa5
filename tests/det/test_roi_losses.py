"""The count-based RoI classifier losses in mmdet's BBoxHead: closed forms
(Balanced Sigmoid with its constant, its binary case, Balanced Softmax with
background, post-hoc LA), background scores unchanged by every correction,
the custom-classifier interface (channels, activation, accuracy), and bad
inputs refused when the model is built."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

from mmnpe.det import (BalancedSigmoidRoILoss, BalancedSoftmaxRoILoss,
                       PostHocLARoILoss)
from mmnpe.functional import balanced_sigmoid_offset

D = torch.float64
COUNTS = [40., 20., 10., 5., 1.]


def _head(loss_cls, num_classes=5, **kwargs):
    return MODELS.build(
        dict(
            type='Shared2FCBBoxHead',
            in_channels=4,
            fc_out_channels=8,
            roi_feat_size=2,
            num_classes=num_classes,
            loss_cls=loss_cls,
            **kwargs))


def _inputs(n=8, c=5, seed=0, channels=None):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, channels or c, generator=g, dtype=D)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 5, 5])[:n]
    return z, labels


# Balanced Sigmoid ---------------------------------------------------------


def test_balanced_sigmoid_offset_has_the_log_k_minus_1_constant():
    counts = torch.tensor(COUNTS, dtype=D)
    n, k = counts.sum(), counts.numel()
    f = counts / n
    want = (f / (1 - f)).log() + math.log(k - 1)
    torch.testing.assert_close(balanced_sigmoid_offset(counts), want)
    # The slides' form, term by term.
    slides = torch.tensor(
        [-math.log((n / k) / nj * (n - nj) / (n - n / k)) for nj in COUNTS],
        dtype=D)
    torch.testing.assert_close(balanced_sigmoid_offset(counts), slides)


def test_balanced_sigmoid_roi_loss_closed_form_background_all_zero():
    head = _head(dict(type='BalancedSigmoidRoILoss', class_counts=COUNTS))
    loss = head.loss_cls
    # One sigmoid per foreground class, no background channel.
    assert head.fc_cls.out_features == 5 and loss.num_classes == 5
    z, labels = _inputs()
    got = loss(z, labels, reduction_override='none')
    offset = balanced_sigmoid_offset(torch.tensor(COUNTS, dtype=D))
    target = torch.zeros(8, 5, dtype=D)
    target[torch.arange(5), labels[:5]] = 1  # the 3 background RoIs: zeros
    want = F.binary_cross_entropy_with_logits(
        z + offset, target, reduction='none')
    torch.testing.assert_close(got, want)
    # BBoxHead's call: per-RoI weights and avg_factor = weighted RoIs.
    weights = torch.tensor([1., 1, 1, 0, 1, 1, 0, 1])
    mean = loss(z, labels, weights, avg_factor=6.)
    torch.testing.assert_close(mean, (want * weights[:, None]).sum() / 6.)


def test_balanced_sigmoid_binary_case():
    # k = 2 foreground classes: offset_j = log(n_j / n_other); a background
    # RoI is a negative of both.
    head = _head(
        dict(type='BalancedSigmoidRoILoss', class_counts=[3., 1.]),
        num_classes=2)
    loss = head.loss_cls
    torch.testing.assert_close(loss.offset(),
                               torch.tensor([3., 1 / 3], dtype=D).log())
    z = torch.zeros(2, 2, dtype=D)
    got = loss(z, torch.tensor([1, 2]), reduction_override='none')
    # sigmoid(log 3) = 3/4, sigmoid(log 1/3) = 1/4; RoI 0 is of class 1,
    # RoI 1 background.
    want = torch.tensor([[-math.log(1 - 3 / 4), -math.log(1 / 4)],
                         [-math.log(1 - 3 / 4), -math.log(1 - 1 / 4)]],
                        dtype=D)
    torch.testing.assert_close(got, want)


def test_balanced_sigmoid_uniform_counts_is_plain_bce():
    head = _head(dict(type='BalancedSigmoidRoILoss', class_counts=[7.] * 5))
    z, labels = _inputs()
    target = F.one_hot(labels, 6)[:, :5].to(D)
    torch.testing.assert_close(
        head.loss_cls(z, labels, reduction_override='none'),
        F.binary_cross_entropy_with_logits(z, target, reduction='none'))


def test_balanced_sigmoid_test_time_is_plain_sigmoid_with_background_column():
    head = _head(dict(type='BalancedSigmoidRoILoss', class_counts=COUNTS))
    z, _ = _inputs()
    scores = head.loss_cls.get_activation(z)
    assert scores.shape == (8, 6)
    torch.testing.assert_close(scores[:, :5], z.sigmoid())
    torch.testing.assert_close(scores[:, 5],
                               (1 - z.sigmoid().sum(1)).clamp(0, 1))
    acc = head.loss_cls.get_accuracy(z, _inputs()[1])
    assert set(acc) == {'acc_classes'}


def test_balanced_sigmoid_through_the_head_predicts_sigmoids():
    torch.manual_seed(0)
    head = _head(dict(type='BalancedSigmoidRoILoss', class_counts=COUNTS))
    head.init_weights()
    rois = torch.tensor([[0, 2., 2., 20., 20.], [0, 5., 5., 30., 40.]])
    z = torch.randn(2, 5)
    (res, ) = head.predict_by_feat((rois, ), (z, ), (torch.zeros(2, 20), ),
                                   [dict(img_shape=(64, 64))],
                                   rcnn_test_cfg=None)
    # BBoxHead would softmax a sigmoid classifier without the custom
    # activation; here the scores are the sigmoids.
    torch.testing.assert_close(res.scores[:, :5], z.sigmoid())


# The BALMS variant and image counts ------------------------------------------

IMAGES = 60.  # training images: more than any image count, less than the sum


def _bce_by_hand(z, target):
    """-[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], written out."""
    p = z.sigmoid()
    return -(target * p.log() + (1 - target) * (1 - p).log())


def test_balanced_sigmoid_balms_variant_closed_form_foreground_only():
    """The BALMS code: foreground RoIs train on z + log(f / (1 - f)),
    f = image_count / number_of_images, no log(k - 1); background RoIs on
    the plain z; sum over classes / number of RoIs."""
    head = _head(
        dict(
            type='BalancedSigmoidRoILoss',
            class_counts=COUNTS,
            kind='images',
            num_samples=IMAGES,
            variant='balms'))
    loss = head.loss_cls
    f = torch.tensor(COUNTS, dtype=D) / IMAGES
    torch.testing.assert_close(loss.offset(), (f / (1 - f)).log())
    z, labels = _inputs()
    target = F.one_hot(labels, 6)[:, :5].to(D)
    fg = (labels < 5)[:, None]
    want = _bce_by_hand(torch.where(fg, z + (f / (1 - f)).log(), z), target)
    got = loss(z, labels, reduction_override='none')
    torch.testing.assert_close(got, want)
    # Background rows are exactly plain BCE, foreground rows are not.
    plain = _bce_by_hand(z, target)
    torch.testing.assert_close(got[~fg[:, 0]], plain[~fg[:, 0]])
    assert not torch.allclose(got[fg[:, 0]], plain[fg[:, 0]])
    # BBoxHead's reduction: avg_factor = number of RoIs, as the code's
    # sum / n_i.
    torch.testing.assert_close(
        loss(z, labels, torch.ones(8), avg_factor=8.),
        want.sum() / 8)


def test_balanced_sigmoid_slides_variant_of_image_counts_uses_the_images():
    """kind='images': n is the number of images (an image holds several
    categories), not the sum of image counts; the slides keep log(k - 1)
    and offset every RoI."""
    head = _head(
        dict(
            type='BalancedSigmoidRoILoss',
            class_counts=COUNTS,
            kind='images',
            num_samples=IMAGES))
    f = torch.tensor(COUNTS, dtype=D) / IMAGES
    want_offset = (f / (1 - f)).log() + math.log(5 - 1)
    torch.testing.assert_close(head.loss_cls.offset(), want_offset)
    z, labels = _inputs()
    target = F.one_hot(labels, 6)[:, :5].to(D)
    torch.testing.assert_close(
        head.loss_cls(z, labels, reduction_override='none'),
        _bce_by_hand(z + want_offset, target))


def test_balanced_sigmoid_variants_differ_by_the_constant_and_background():
    slides = _head(
        dict(
            type='BalancedSigmoidRoILoss',
            class_counts=COUNTS,
            kind='images',
            num_samples=IMAGES)).loss_cls
    balms = _head(
        dict(
            type='BalancedSigmoidRoILoss',
            class_counts=COUNTS,
            kind='images',
            num_samples=IMAGES,
            variant='balms')).loss_cls
    torch.testing.assert_close(slides.offset() - balms.offset(),
                               torch.full((5, ), math.log(4), dtype=D))


def test_balanced_sigmoid_image_total_from_a_counts_json(tmp_path):
    path = tmp_path / 'counts.json'
    path.write_text('{"kind": "images", "counts": %s, "num_images": 60}' %
                    COUNTS)
    loss = _head(
        dict(
            type='BalancedSigmoidRoILoss',
            class_counts=str(path),
            kind='images',
            variant='balms')).loss_cls
    assert float(loss.num_images) == IMAGES
    f = torch.tensor(COUNTS, dtype=D) / IMAGES
    torch.testing.assert_close(loss.offset(), (f / (1 - f)).log())
    path.write_text('{"kind": "images", "counts": %s}' % COUNTS)
    with pytest.raises(ValueError, match='no "num_images"'):
        MODELS.build(
            dict(
                type='BalancedSigmoidRoILoss',
                class_counts=str(path),
                kind='images'))


@pytest.mark.parametrize('kwargs, match', [
    (dict(variant='balms'), "variant='balms' uses image frequencies"),
    (dict(variant='balms', kind='instances'), "kind must be 'images'"),
    (dict(variant='bamls', kind='images'), 'variant must be one of'),
    (dict(kind='images', class_counts=COUNTS), 'pass num_samples'),
])
def test_balanced_sigmoid_variant_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='BalancedSigmoidRoILoss', **kwargs))


def test_balanced_sigmoid_image_counts_unset_total_says_so():
    loss = _head(dict(type='BalancedSigmoidRoILoss', kind='images')).loss_cls
    loss.set_class_counts(COUNTS)
    z, labels = _inputs()
    with pytest.raises(RuntimeError, match='number of training images'):
        loss(z, labels)
    loss.set_num_images(IMAGES)
    assert torch.isfinite(loss(z, labels))


# Balanced Softmax -----------------------------------------------------------


def test_balanced_softmax_roi_loss_closed_form_and_test_softmax():
    head = _head(dict(type='BalancedSoftmaxRoILoss', class_counts=COUNTS))
    assert head.fc_cls.out_features == 6
    z, labels = _inputs(channels=6)
    got = head.loss_cls(z, labels, reduction_override='none')
    n = torch.tensor(COUNTS, dtype=D)
    p = F.softmax(z, 1)
    for i in range(8):
        if labels[i] == 5:
            want = -p[i, 5].log()
        else:
            fg = n * z[i, :5].exp() / (n * z[i, :5].exp()).sum()
            want = -((1 - p[i, 5]) * fg[labels[i]]).log()
        torch.testing.assert_close(got[i], want)
    assert torch.equal(head.loss_cls.get_activation(z), F.softmax(z, -1))
    assert set(head.loss_cls.get_accuracy(z, labels)) == {'acc'}


# Post-hoc LA ----------------------------------------------------------------


def test_post_hoc_la_trains_as_cross_entropy():
    la = _head(dict(type='PostHocLARoILoss', class_counts=COUNTS)).loss_cls
    ce = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=False))
    z, labels = _inputs(channels=6)
    w = torch.rand(8, dtype=D)
    torch.testing.assert_close(
        la(z, labels, w, avg_factor=5.), ce(z, labels, w, avg_factor=5.))


def test_post_hoc_la_scores_closed_form_background_kept():
    la = _head(dict(type='PostHocLARoILoss', class_counts=COUNTS,
                    tau=0.7)).loss_cls
    z, _ = _inputs(channels=6)
    p = F.softmax(z, 1)
    log_pi = (torch.tensor(COUNTS, dtype=D) / sum(COUNTS)).log()
    got = la.get_activation(z)
    torch.testing.assert_close(got[:, 5], p[:, 5])
    torch.testing.assert_close(got[:, :5], (1 - p[:, 5:]) *
                               F.softmax(z[:, :5] - 0.7 * log_pi, 1))
    la.tau = 0.
    assert torch.equal(la.get_activation(z), F.softmax(z, -1))


# Background invariance of every correction ---------------------------------


@pytest.mark.parametrize('loss', [
    dict(type='BalancedSoftmaxRoILoss', class_counts=COUNTS),
    dict(type='PostHocLARoILoss', class_counts=COUNTS, tau=1.0),
    dict(type='PostHocLARoILoss', class_counts=COUNTS, tau=3.0),
])
def test_background_score_unchanged_by_the_test_time_correction(loss):
    head = _head(loss)
    z, _ = _inputs(channels=6)
    torch.testing.assert_close(
        head.loss_cls.get_activation(z)[:, -1],
        F.softmax(z, -1)[:, -1])


# Counts and bad inputs ------------------------------------------------------


@pytest.mark.parametrize(
    'loss',
    ['BalancedSigmoidRoILoss', 'BalancedSoftmaxRoILoss', 'PostHocLARoILoss'])
def test_counts_of_the_wrong_length_are_refused_when_the_head_is_built(loss):
    with pytest.raises(
            ValueError,
            match=r'has 3 entries but the bbox head '
            r'\(num_classes=5\) has 5'):
        _head(dict(type=loss, class_counts=[3., 2., 1.]))


@pytest.mark.parametrize(
    'loss',
    ['BalancedSigmoidRoILoss', 'BalancedSoftmaxRoILoss', 'PostHocLARoILoss'])
def test_zero_and_bad_counts_are_refused(loss):
    with pytest.raises(ValueError, match=r'class_counts\[1\] is 0'):
        MODELS.build(dict(type=loss, class_counts=[3., 0., 1.]))
    with pytest.raises(ValueError, match=r'kind must be one of'):
        MODELS.build(dict(type=loss, kind='pixels'))
    with pytest.raises(ValueError, match=r'reduction must be one of'):
        MODELS.build(dict(type=loss, reduction='avg'))


ZERO = [40., 0., 10., 5., 1.]


@pytest.mark.parametrize('loss, extra', [
    ('BalancedSigmoidRoILoss', dict()),
    ('BalancedSigmoidRoILoss',
     dict(kind='images', num_samples=IMAGES, variant='balms')),
    ('BalancedSoftmaxRoILoss', dict()),
    ('PostHocLARoILoss', dict()),
])
def test_zero_counts_train_and_score_with_eps(loss, extra):
    """The zero-count error offers eps: every loss takes it (an LVIS subset,
    a filtered set), and the empty category gets f + eps inside the log."""
    with pytest.raises(ValueError, match=r'pass an explicit eps'):
        MODELS.build(dict(type=loss, class_counts=ZERO, **extra))
    head = _head(dict(type=loss, class_counts=ZERO, eps=1e-12, **extra))
    channels = 5 if loss == 'BalancedSigmoidRoILoss' else 6
    z, labels = _inputs(channels=channels)
    z.requires_grad_()
    value = head.loss_cls(z, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(z.grad).all()
    assert torch.isfinite(head.loss_cls.get_activation(z)).all()


def test_eps_enters_each_loss_inside_the_log():
    counts = torch.tensor(ZERO, dtype=D)
    pi = counts / counts.sum()
    z, labels = _inputs(channels=6)
    la = _head(
        dict(type='PostHocLARoILoss', class_counts=ZERO, eps=1e-6,
             tau=1.0)).loss_cls
    p = F.softmax(z, 1)
    torch.testing.assert_close(
        la.get_activation(z)[:, :5],
        (1 - p[:, 5:]) * F.softmax(z[:, :5] - (pi + 1e-6).log(), 1))
    bs = _head(
        dict(type='BalancedSoftmaxRoILoss', class_counts=ZERO,
             eps=1e-6)).loss_cls
    # log(pi + eps) = log(n + eps * sum n) - log(sum n): Balanced Softmax of
    # the counts n_j + eps * n.
    shifted = _head(
        dict(
            type='BalancedSoftmaxRoILoss',
            class_counts=(counts + 1e-6 * counts.sum()).tolist())).loss_cls
    torch.testing.assert_close(
        bs(z, labels, reduction_override='none'),
        shifted(z, labels, reduction_override='none'))
    sig = _head(
        dict(type='BalancedSigmoidRoILoss', class_counts=ZERO,
             eps=1e-6)).loss_cls
    torch.testing.assert_close(sig.offset(), (pi + 1e-6).log() -
                               (1 - pi).log() + math.log(4))
    with pytest.raises(ValueError, match='eps must be None or a finite'):
        MODELS.build(dict(type='PostHocLARoILoss', eps=-1.0))


def test_unset_counts_say_how_to_set_them():
    head = _head(dict(type='BalancedSoftmaxRoILoss'))
    # Built without counts: a buffer of C zeros, so checkpoints load.
    assert head.loss_cls.class_counts.shape == (5, )
    z, labels = _inputs(channels=6)
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        head.loss_cls(z, labels)


def test_labels_and_scores_are_checked():
    loss = _head(dict(type='PostHocLARoILoss', class_counts=COUNTS)).loss_cls
    z, labels = _inputs(channels=6)
    with pytest.raises(ValueError, match=r'labels must be in \[0, 5\]'):
        loss(z, torch.tensor([0, 1, 2, 3, 4, 5, 6, 5]))
    with pytest.raises(ValueError, match=r'cls_score must be \(N, 6\)'):
        loss(z[:, :5], labels)


@pytest.mark.parametrize(
    'loss', [BalancedSigmoidRoILoss, BalancedSoftmaxRoILoss, PostHocLARoILoss])
def test_dense_heads_cannot_carry_the_roi_losses(loss):
    # RetinaNet sizes its classifier from loss_cls.use_sigmoid and never
    # asks the loss for its channels.
    head = MODELS.build(
        dict(
            type='RetinaHead',
            num_classes=5,
            in_channels=8,
            feat_channels=8,
            stacked_convs=1,
            anchor_generator=dict(
                type='AnchorGenerator',
                octave_base_scale=4,
                scales_per_octave=1,
                ratios=[1.0],
                strides=[8]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_cls=dict(type=loss.__name__, class_counts=COUNTS)))
    with pytest.raises(TypeError, match='One-stage'):
        head.loss_cls.check_host_head(head)
    with pytest.raises(TypeError, match='get_cls_channels was never called'):
        head.loss_cls(torch.zeros(2, 5), torch.tensor([0, 5]))


def test_empty_category_eps_advice_gives_sane_post_hoc_la_scores():
    """The refusal recommends eps ~ 1 / n for post-hoc LA: the empty
    category then scores like one seen once; eps=1e-12 would let it take
    the foreground mass."""
    counts = [90., 9., 1., 0.]
    with pytest.raises(ValueError, match=r'order of 1 / n \(n = 100'):
        MODELS.build(dict(type='PostHocLARoILoss', class_counts=counts))
    logits = torch.zeros(1, 5)
    scores = {}
    for eps in (1e-12, 1 / 100):
        loss = MODELS.build(
            dict(type='PostHocLARoILoss', class_counts=counts, eps=eps))
        loss.num_classes = 4
        scores[eps] = loss.get_activation(logits)[0]
    fg = scores[1e-12][:4]
    assert fg[3] > 0.999 * fg.sum()  # the tiny eps: all to the empty one
    fg = scores[1 / 100][:4]
    # Equal logits: the empty category (prior 1/n) scores twice the one
    # seen once (prior 1/n + 1/n), not 1e10 times.
    torch.testing.assert_close(
        fg[3] / fg[2], torch.tensor(2.), rtol=1e-4, atol=0)
    assert fg[3] < 0.5

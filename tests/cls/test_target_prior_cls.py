"""``target_prior`` on the classification heads (NPE-LA through
NPEHeadMixin, post-hoc LA): uniform is the old prediction bit for bit, a
given prior adds its centred log, 'source' brings the training prior back,
the buffer follows the config and not a checkpoint, fusion keeps it."""
import json

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmnpe.cls import fuse_npe_classifier
from mmnpe.functional import centered_log_prior, npe_logit_adjust

HEADS = {
    'NPEClsHead': dict(in_channels=8),
    'NPEVisionTransformerClsHead': dict(in_channels=8, hidden_dim=6),
    'NPEStackedLinearClsHead': dict(in_channels=8, mid_channels=[7, 6]),
}
PRIOR = [0.4, 0.3, 0.15, 0.1, 0.05]
COUNTS = [50, 20, 10, 5, 2]


def build(name='NPEClsHead', **kwargs):
    torch.manual_seed(0)
    cfg = dict(type=name, num_classes=5)
    if name in HEADS:
        cfg.update(HEADS[name], num_pems=2)
    else:
        cfg.update(in_channels=8)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    return head.eval()


def feats():
    return (torch.randn(6, 8, generator=torch.Generator().manual_seed(1)), )


def old_npe_forward(head, x):
    """The NPE head's prediction before the key existed."""
    h = head.pre_logits(x)
    return npe_logit_adjust(
        head.final_linear(h), head.estimate_prior(h), head.scale_factor)


@pytest.mark.parametrize('name', list(HEADS))
@pytest.mark.parametrize('value', [None, 'uniform'])
def test_uniform_is_the_old_prediction_bit_for_bit(name, value):
    head = build(name, scale_factor=0.7, target_prior=value)
    assert head.target_prior_mode == 'uniform'
    with torch.no_grad():
        assert torch.equal(head(feats()), old_npe_forward(head, feats()))


@pytest.mark.parametrize('name', list(HEADS))
def test_given_prior_adds_its_centred_log(name):
    head = build(name, target_prior=PRIOR)
    assert head.target_prior_mode == 'given'
    with torch.no_grad():
        base = old_npe_forward(head, feats())
        out = head(feats())
        torch.testing.assert_close(head.target_prior,
                                   torch.tensor(PRIOR, dtype=torch.float64))
        want = base + centered_log_prior(
            head.target_prior.double().log()).float()
        assert torch.equal(out, want)
        # Bayes' rule: softmax of the balanced logits times pi_t.
        p = base.softmax(1) * torch.tensor(PRIOR)
        torch.testing.assert_close(out.softmax(1), p / p.sum(1, keepdim=True))
        # Counts are normalised: the same prediction.
        assert torch.equal(
            build(name, target_prior=[8, 6, 3, 2, 1])(feats()), out)


@pytest.mark.parametrize('name', list(HEADS))
def test_source_on_npe_la_restores_the_plain_logits(name):
    head = build(name, scale_factor=0.7, target_prior='source')
    with torch.no_grad():
        plain = head.final_linear(head.pre_logits(feats()))
        assert torch.equal(head(feats()), plain)
        assert not torch.equal(old_npe_forward(head, feats()), plain)


def test_post_hoc_la_target_prior_and_source():
    x = feats()
    head = build('LogitAdjustClsHead', class_counts=COUNTS, tau=1.0)
    with torch.no_grad():
        fc = head.fc(head.pre_logits(x))
        eta = centered_log_prior(head.log_class_prior()).float()
        old = npe_logit_adjust(fc, eta.expand(6, -1), 1.0)
        assert torch.equal(head(x), old)
        head.set_target_prior(PRIOR)
        assert torch.equal(
            head(x),
            old + centered_log_prior(head.target_prior.double().log()).float())
        # 'source': the counts' prior as target prior, so at tau = 1 the
        # plain (CE) logits return, up to rounding.
        head.set_target_prior('source')
        assert torch.equal(head(x), old + eta)
        torch.testing.assert_close(head(x), fc)
        head.set_target_prior(COUNTS)
        torch.testing.assert_close(head(x), fc)


def test_balanced_softmax_recipe_uniform_counts_plus_target_prior():
    """A Balanced Softmax model's plain logits are balanced: the prior they
    hold under is uniform, so the head's counts are uniform and
    target_prior adds log pi_t; the training counts as target_prior give
    the prediction for the training prior."""
    x = feats()
    head = build('LogitAdjustClsHead', class_counts=[1] * 5, tau=1.0)
    with torch.no_grad():
        plain = head.fc(head.pre_logits(x))
        torch.testing.assert_close(head(x), plain)
        head.set_target_prior(PRIOR)
        torch.testing.assert_close(
            head(x), plain +
            centered_log_prior(head.target_prior.double().log()).float())
        head.set_target_prior(COUNTS)
        counts = torch.tensor(COUNTS, dtype=torch.float64)
        torch.testing.assert_close(
            head(x), plain + centered_log_prior(counts.double().log()).float())


def test_buffer_follows_the_config_not_the_checkpoint(tmp_path):
    trained = build(target_prior=PRIOR)
    state = trained.state_dict()
    # Not saved: a checkpoint neither holds nor overrides the setting.
    assert not any('target_prior' in k for k in state)
    assert 'target_prior' in dict(trained.named_buffers())
    other = build(target_prior=[0.1, 0.1, 0.2, 0.3, 0.3])
    other.load_state_dict(state, strict=True)
    torch.testing.assert_close(
        other.target_prior,
        torch.tensor([0.1, 0.1, 0.2, 0.3, 0.3], dtype=torch.float64))
    plain = build()
    plain.load_state_dict(state, strict=True)
    assert plain.target_prior_mode == 'uniform'
    # A JSON file (as tools/analysis/label_shift.py writes it).
    path = tmp_path / 'target_prior.json'
    path.write_text(json.dumps(dict(kind='prior', prior=PRIOR)))
    head = build(target_prior=str(path))
    assert head.target_prior_file == str(path)
    torch.testing.assert_close(head.target_prior,
                               torch.tensor(PRIOR, dtype=torch.float64))


@pytest.mark.parametrize('value', [PRIOR, 'source'])
def test_fused_head_keeps_the_target_prior(value):
    head = build(target_prior=value)
    x = feats()
    with torch.no_grad():
        fused = head.fuse()(head.pre_logits(x))
        ref = head(x)
    centre = lambda z: z - z.mean(1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(centre(fused), centre(ref))


def test_fuse_config_drops_the_key_and_folds_the_prior_into_the_bias():
    cfg = Config(
        dict(
            model=dict(
                type='ImageClassifier',
                backbone=dict(type='CifarResNet', depth=32),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='NPEClsHead',
                    num_classes=5,
                    in_channels=64,
                    num_pems=2,
                    target_prior=PRIOR))))
    model = MODELS.build(cfg.model).eval()
    for p in model.head.parameters():
        nn.init.normal_(p, std=0.5)
    fused_cfg, fused_state = fuse_npe_classifier(cfg, model.state_dict())
    assert 'target_prior' not in fused_cfg.model.head
    fused = MODELS.build(fused_cfg.model).eval()
    fused.load_state_dict(fused_state)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(
            fused(x, mode='tensor').softmax(1),
            model(x, mode='tensor').softmax(1))


@pytest.mark.parametrize('name', list(HEADS) + ['LogitAdjustClsHead'])
@pytest.mark.parametrize('value, match', [
    ([0.5, 0.5], 'target_prior must have num_classes=5 entries, got 2'),
    ([0.5, 0.5, -0.2, 0.1, 0.1], r'target_prior\[2\] must be >= 0'),
    ([0.5, float('nan'), 0.2, 0.2, 0.1], r'target_prior\[1\] must be a '
     'finite'),
    ([0, 0, 0, 0, 0], 'target_prior must not be all zero'),
    ([1, 0, 1, 1, 1], r'target_prior\[1\] is 0'),
    ('balanced', "'uniform', 'source'.*got 'balanced' \\(no such file\\)"),
])
def test_bad_target_priors_are_refused_when_built(name, value, match):
    kwargs = dict(class_counts=COUNTS) if name == 'LogitAdjustClsHead' else {}
    with pytest.raises(ValueError, match=match):
        build(name, target_prior=value, **kwargs)

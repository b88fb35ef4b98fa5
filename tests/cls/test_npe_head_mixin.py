"""The three NPE heads share the mixin: the same maths on each stock head's
``pre_logits`` and output layer."""
import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.cls import (NPEClsHead, NPEHeadMixin, NPEStackedLinearClsHead,
                       NPEVisionTransformerClsHead)

HEADS = {
    'NPEClsHead': dict(in_channels=8),
    'NPEVisionTransformerClsHead': dict(in_channels=8, hidden_dim=6),
    'NPEStackedLinearClsHead': dict(in_channels=8, mid_channels=[7, 6]),
}
FINAL = {
    'NPEClsHead': 'fc',
    'NPEVisionTransformerClsHead': 'layers.head',
    'NPEStackedLinearClsHead': 'layers.2.fc',
}


def build(name, **kwargs):
    torch.manual_seed(0)
    head = MODELS.build(
        dict(type=name, num_classes=5, **HEADS[name], **kwargs))
    head.init_weights()
    return head


def stock_of(head):
    cfg = {k: v for k, v in HEADS[type(head).__name__].items()}
    stock = MODELS.build(
        dict(type=type(head).stock_head.__name__, num_classes=5, **cfg))
    missing, unexpected = stock.load_state_dict(
        head.state_dict(), strict=False)
    assert not missing
    assert set(unexpected) <= {'pems.weight', 'pems.bias'}
    return stock.eval()


def test_registered_variants_and_their_stock_heads():
    assert {
        k: v.__name__
        for k, v in NPEHeadMixin.npe_heads.items()
    } == {
        'LinearClsHead': 'NPEClsHead',
        'VisionTransformerClsHead': 'NPEVisionTransformerClsHead',
        'StackedLinearClsHead': 'NPEStackedLinearClsHead'
    }
    assert NPEClsHead.stock_head.__name__ == 'LinearClsHead'
    assert issubclass(NPEVisionTransformerClsHead,
                      NPEVisionTransformerClsHead.stock_head)
    assert issubclass(NPEStackedLinearClsHead,
                      NPEStackedLinearClsHead.stock_head)


@pytest.mark.parametrize('name', list(HEADS))
def test_pems_read_what_the_output_layer_reads(name):
    head = build(name, num_pems=3)
    final = head.final_linear
    assert head.final_linear_name == FINAL[name]
    assert head.pems.in_features == final.in_features
    assert head.pems.out_features == 3 * 5
    # Small normal init after the stock init (the ViT head's init_cfg sets
    # every nn.Linear to 0, the PEMs included, before the mixin re-inits).
    assert 0 < head.pems.weight.std() < 0.002
    assert (head.pems.bias == 0).all()


@pytest.mark.parametrize('name', list(HEADS))
def test_zero_pems_is_the_stock_head_and_pems_correct_its_logits(name):
    feats = (torch.randn(6, 8), )
    plain = build(name, num_pems=0).eval()
    for p in plain.parameters():
        nn.init.normal_(p, std=0.5)
    assert not hasattr(plain, 'pems')
    with torch.no_grad():
        torch.testing.assert_close(plain(feats), stock_of(plain)(feats))

    head = build(name, num_pems=4, scale_factor=0.5).eval()
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        h = head.pre_logits(feats)
        g = head.pems(h).view(6, 4, 5)
        eta = -g.mean(1)
        eta = eta - eta.mean(1, keepdim=True)
        torch.testing.assert_close(
            head(feats),
            stock_of(head)(feats) - 0.5 * eta)
        torch.testing.assert_close(head.estimate_prior(h), eta)


@pytest.mark.parametrize('name', list(HEADS))
def test_loss_is_the_stock_loss_plus_summed_owl(name):
    head = build(name, num_pems=2, pem_loss_weight=0.5)
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    feats = (torch.randn(4, 8), )
    labels = torch.tensor([0, 3, 4, 1])
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    losses = head.loss(feats, samples)
    h = head.pre_logits(feats)
    ce = nn.functional.cross_entropy(head.final_linear(h), labels)
    g = head.pems(h).view(4, 2, 5)
    owl = nn.functional.softplus(
        g.gather(2,
                 labels.view(4, 1, 1).expand(4, 2, 1))).sum(1).mean()
    torch.testing.assert_close(losses['loss'], ce)
    torch.testing.assert_close(losses['loss_npe'], 0.5 * owl)


@pytest.mark.parametrize('name', list(HEADS))
def test_fuse_is_one_linear_with_the_same_predictions(name):
    head = build(name, num_pems=3).eval()
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    feats = (torch.randn(16, 8), )
    with torch.no_grad():
        fused = head.fuse()(head.pre_logits(feats))
        ref = head(feats)
    centre = lambda z: z - z.mean(1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(centre(fused), centre(ref))


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_pems=-1), 'num_pems must be an integer >= 0, got -1'),
    (dict(num_classes=1), 'num_classes must be an int > 1'),
    (dict(in_channels=[8, 16]), r'in_channels must be an int > 0 .* got '
     r'\[8, 16\]'),
    (dict(pem_loss_weight=-1.), 'pem_loss_weight must be a number >= 0'),
    (dict(pem_init_std=0), 'pem_init_std must be a number > 0, got 0'),
])
def test_bad_arguments_name_the_head_and_the_value(kwargs, message):
    cfg = dict(
        type='NPEVisionTransformerClsHead', num_classes=5, in_channels=8)
    cfg.update(kwargs)
    with pytest.raises(
            ValueError, match=f'NPEVisionTransformerClsHead: {message}'):
        MODELS.build(cfg)


def test_unknown_arguments_point_to_no_head_when_none_takes_them():
    with pytest.raises(
            TypeError,
            match=r"got \['distillation'\]: NPE versions exist for "
            r'LinearClsHead -> NPEClsHead, StackedLinearClsHead -> '
            r'NPEStackedLinearClsHead, VisionTransformerClsHead -> '
            r'NPEVisionTransformerClsHead only'):
        MODELS.build(
            dict(
                type='NPEClsHead',
                num_classes=5,
                in_channels=8,
                distillation=True))


def test_soft_labels_are_refused():
    head = build('NPEVisionTransformerClsHead')
    sample = DataSample().set_gt_label(1).set_gt_score(torch.rand(5))
    with pytest.raises(ValueError, match='needs hard labels'):
        head.loss((torch.randn(1, 8), ), [sample])


def _dense_owl(head, h, labels):
    """The OWL term from all K x C PEM outputs, gathered at the labels (the
    definition the true-class rows must reproduce)."""
    n, k, c = len(labels), head.num_pems, head.num_classes
    g = head.pems(h).view(n, k, c)
    u = g.gather(2, labels.view(n, 1, 1).expand(n, k, 1)).squeeze(2)
    return nn.functional.softplus(-head.sign * u).sum(1).mean()


@pytest.mark.parametrize('name', list(HEADS))
@pytest.mark.parametrize('sign', [-1, 1])
def test_true_class_rows_give_the_dense_owl_and_its_gradients(name, sign):
    """Training reads only the K true-class rows of the PEM weight; loss and
    gradients (PEMs, the features, hence the backbone) are those of the K x
    C outputs, also with repeated labels in the batch."""
    head = build(name, num_pems=3, sign=sign)
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    x = torch.randn(6, 8, requires_grad=True)
    labels = torch.tensor([0, 3, 3, 4, 1, 3])
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    loss = head.loss((x, ), samples)['loss_npe']
    grads = torch.autograd.grad(loss, [head.pems.weight, head.pems.bias, x])

    ref = _dense_owl(head, head.pre_logits((x, )), labels)
    ref_grads = torch.autograd.grad(ref, [head.pems.weight, head.pems.bias, x])
    torch.testing.assert_close(loss, ref)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want)
    # Rows of classes absent from the batch get no OWL gradient.
    rows = grads[0].view(3, 5, -1).abs().sum((0, 2))
    assert (rows[[0, 1, 3, 4]] > 0).all() and rows[2] == 0


def test_true_class_outputs_refuse_bad_labels():
    head = build('NPEClsHead', num_pems=2)
    h = torch.randn(3, 8)
    with pytest.raises(
            ValueError,
            match=r'labels must lie in \[0, 4\] '
            r'\(num_classes=5\), got 5'):
        head.pem_true_class_outputs(h, torch.tensor([0, 5, 1]))
    with pytest.raises(
            ValueError,
            match=r'one label per feature, shape '
            r'\(3,\), got \(2,\)'):
        head.pem_true_class_outputs(h, torch.tensor([0, 1]))


class _CountTorchCalls(torch.overrides.TorchFunctionMode):
    """Counts every torch function and tensor method called from Python."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _calls(head, fn):
    with _CountTorchCalls() as counter:
        fn(head)
    return counter.calls


@pytest.mark.parametrize('name', list(HEADS))
def test_no_python_loop_over_the_pems(name):
    """Training step, prediction and estimate make the same torch calls for
    K = 1 and K = 16: the PEMs run as one batched product, never as a loop
    over K."""
    feats = (torch.randn(4, 8), )
    samples = [DataSample().set_gt_label(i) for i in (0, 3, 4, 1)]

    def train(head):
        sum(head.loss(feats, samples).values()).backward()

    def predict(head):
        with torch.no_grad():
            head(feats)
            head.estimate_prior(head.pre_logits(feats))

    for fn in (train, predict):
        one, many = (_calls(build(name, num_pems=k), fn) for k in (1, 16))
        assert one == many, (fn.__name__, one, many)


def test_checkpoint_keys_keep_their_names_and_shapes():
    """One (K * C, D) linear layer named ``pems``, as before: checkpoints
    of earlier releases load unchanged."""
    head = build('NPEClsHead', num_pems=16)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        'fc.weight': (5, 8),
        'fc.bias': (5, ),
        'pems.weight': (16 * 5, 8),
        'pems.bias': (16 * 5, )
    }

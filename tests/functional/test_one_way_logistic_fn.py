import pytest
import torch
import torch.nn.functional as F

from mmnpe.functional import one_way_logistic_loss


@pytest.mark.parametrize('sign', [-1, 1])
def test_closed_form_on_true_class_only(sign):
    pred = torch.tensor([[0.5, -2.0, 3.0], [1.0, 0.0, -1.0]])
    target = torch.tensor([2, 0])
    loss = one_way_logistic_loss(pred, target, sign=sign)
    expected = torch.log1p(torch.exp(-sign * torch.tensor([3.0, 1.0])))
    torch.testing.assert_close(loss, expected)


def test_gradient_touches_true_class_only_and_has_the_sign():
    pred = torch.zeros(2, 3, requires_grad=True)
    target = torch.tensor([1, 2])
    one_way_logistic_loss(pred, target, sign=-1).sum().backward()
    # d softplus(u)/du = sigmoid(u) = 0.5 at 0: gradient descent pushes u down.
    expected = torch.tensor([[0., 0.5, 0.], [0., 0., 0.5]])
    torch.testing.assert_close(pred.grad, expected)

    pred.grad = None
    one_way_logistic_loss(pred, target, sign=1).sum().backward()
    torch.testing.assert_close(pred.grad, -expected)


def test_dense_input_matches_flattened():
    torch.manual_seed(0)
    pred = torch.randn(2, 5, 4, 3)
    target = torch.randint(0, 5, (2, 4, 3))
    dense = one_way_logistic_loss(pred, target)
    flat = one_way_logistic_loss(
        pred.permute(0, 2, 3, 1).reshape(-1, 5), target.reshape(-1))
    assert dense.shape == (2, 4, 3)
    torch.testing.assert_close(dense.reshape(-1), flat)
    torch.testing.assert_close(
        flat,
        F.softplus(
            pred.permute(0, 2, 3,
                         1).reshape(-1,
                                    5).gather(1,
                                              target.reshape(-1,
                                                             1)).squeeze(1)))


def test_ignored_pixels_get_no_loss_and_no_gradient_even_if_not_finite():
    pred = torch.full((1, 3, 2, 2), float('inf'))
    pred[0, :, 0, 0] = 0.
    pred.requires_grad_(True)
    target = torch.full((1, 2, 2), 255)
    target[0, 0, 0] = 1
    loss = one_way_logistic_loss(pred, target, ignore_index=255)
    assert torch.isfinite(loss).all()
    assert loss[0, 0, 0] > 0 and (loss.flatten()[1:] == 0).all()
    loss.sum().backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[0, :, 1:, :] == 0).all()
    assert (pred.grad[0, :, 0, 1] == 0).all()


@pytest.mark.parametrize('bad', [0, 2, -2, 0.5, True, 'neg'])
def test_sign_must_be_plus_or_minus_one(bad):
    with pytest.raises(ValueError, match=r'sign must be -1 or \+1'):
        one_way_logistic_loss(torch.zeros(1, 2), torch.tensor([0]), sign=bad)


@pytest.mark.parametrize('label', [3, 7, -1])
def test_out_of_range_label_names_the_value(label):
    target = torch.tensor([0, label])
    with pytest.raises(ValueError, match=f'label {label}'):
        one_way_logistic_loss(torch.zeros(2, 3), target, ignore_index=255)


def test_soft_targets_are_refused():
    with pytest.raises(TypeError, match='integer class labels'):
        one_way_logistic_loss(torch.zeros(2, 3), torch.zeros(2, 3))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match='matching N, H, W'):
        one_way_logistic_loss(
            torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))

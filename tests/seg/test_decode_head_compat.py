"""Which decode heads can carry a PEM: each rule refuses, naming the head."""
import pytest
import torch
from mmseg.models.decode_heads import (DAHead, EncHead, FCNHead, OCRHead,
                                       PointHead)
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import nn

from mmnpe.seg.segmentors.decode_head_compat import (
    check_cascade_decode_heads, check_plain_decode_head)


class MaskClassHead(nn.Module):
    """Not a BaseDecodeHead (as MaskFormer's)."""

    def forward(self, x, batch_data_samples):
        return x


class NeedsSamplesHead(FCNHead):

    def forward(self, inputs, batch_data_samples):
        return super().forward(inputs)


class OwnPredictHead(FCNHead):

    def predict(self, inputs, batch_img_metas, test_cfg):
        return super().predict(inputs, batch_img_metas, test_cfg) * 2


class SubclassOfFCN(FCNHead):
    """Inherits forward and predict: fine."""


class DDRHead(FCNHead):
    """Named like a head refused by name."""


@pytest.mark.parametrize('head', [
    FCNHead, SubclassOfFCN, DAHead, EncHead, 'FCNHead', 'ASPPHead',
    'SegformerHead', 'IterativeDecodeHead', 'UnknownHead'
])
def test_heads_with_logits_from_features_pass(head):
    check_plain_decode_head(dict(type=head))


@pytest.mark.parametrize('head, why', [
    (MaskClassHead, 'it is not a BaseDecodeHead'),
    ('MaskFormerHead', 'it is not a BaseDecodeHead'),
    ('Mask2FormerHead', 'it is not a BaseDecodeHead'),
    (NeedsSamplesHead, r'its forward needs more than the features '
     r'\(forward\(self, inputs, batch_data_samples\)\)'),
    (OwnPredictHead, r'its predict\(\) is not predict_by_feat\(forward'),
    (OCRHead, 'it is a cascade stage'),
    ('SideAdapterCLIPHead', 'its forward needs more than the features'),
    (DDRHead, 'DDRNet'),
    ('PIDHead', 'PIDNet'),
    ('VPDDepthHead', 'it regresses depth'),
])
def test_heads_that_cannot_carry_a_pem_are_named_and_explained(head, why):
    name = head if isinstance(head, str) else head.__name__
    with pytest.raises(
            TypeError, match=f'^decode_head {name} cannot carry a PEM: {why}'):
        check_plain_decode_head(dict(type=head))


def test_a_list_of_heads_points_to_the_cascade_segmentor():
    with pytest.raises(
            TypeError,
            match=r"decode_head is a list of 2 heads .*"
            r"type='NPECascadeEncoderDecoder'"):
        check_plain_decode_head([dict(type='FCNHead'), dict(type='OCRHead')])


def test_cascade_stages():
    check_cascade_decode_heads([dict(type='FCNHead'), dict(type='OCRHead')])
    check_cascade_decode_heads(
        [dict(type='FCNHead'),
         dict(type=OCRHead),
         dict(type='OCRHead')])
    with pytest.raises(TypeError, match='must be a list of >= 2'):
        check_cascade_decode_heads(dict(type='FCNHead'))
    with pytest.raises(TypeError, match='must be a list of >= 2'):
        check_cascade_decode_heads([dict(type='FCNHead')])
    with pytest.raises(
            TypeError,
            match=r'decode_head\[0\] MaskClassHead cannot carry a PEM'):
        check_cascade_decode_heads(
            [dict(type=MaskClassHead),
             dict(type='OCRHead')])
    with pytest.raises(
            TypeError,
            match=r'decode_head\[1\] FCNHead cannot carry a PEM: a later '
            'cascade stage must be a BaseCascadeDecodeHead'):
        check_cascade_decode_heads([dict(type='FCNHead')] * 2)
    with pytest.raises(
            TypeError,
            match=r'decode_head\[1\] PointHead cannot carry a PEM: its '
            r'predict\(\) is not predict_by_feat\(forward\(x, prev_output'):
        check_cascade_decode_heads(
            [dict(type='FPNHead'), dict(type=PointHead)])


def test_first_output_heads_are_exactly_those_predicting_from_it():
    """DANet and EncNet predict from forward()[0]; the segmentor corrects
    that output (proved on their stock configs in test_stock_configs)."""
    for head in (DAHead, EncHead):
        assert head.predict is not BaseDecodeHead.predict
    feats = [torch.randn(1, 8, 4, 4)]
    da = DAHead(
        in_channels=8, channels=8, pam_channels=4, num_classes=3).eval()
    metas = [dict(img_shape=(4, 4))]
    with torch.no_grad():
        torch.testing.assert_close(
            da.predict(feats, metas, None),
            da.predict_by_feat(da.forward(feats)[0], metas))

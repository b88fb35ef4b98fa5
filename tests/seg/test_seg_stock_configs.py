"""docs/advanced_guides/supported_heads.md, proven on mmseg's own configs.

Each case takes a stock config from the installed package
(``mmseg/.mim/configs``), adds exactly the documented lines (``_base_``,
``custom_imports``, the segmentor ``type``, a linear ``pem_head`` on the
feature the decode head reads, ``FrozenBackboneHook``), shrinks the backbone
the way mmseg's own r18 configs do (a test-only adaptation, applied alike to
the stock twin: depth / width / layers, head widths and the matching
``in_channels``, never the head type or its feature wiring; no pretrained
weights), builds it on the CPU and checks on 32x32 inputs (392x392 for
LRASPP) that

- the model differs from the stock one in those lines only, and a stock
  state dict loads into it with only ``pem_heads.*`` missing;
- ``scale_factor = 0`` gives exactly the stock segmentor's logits, and
  ``scale_factor = 1`` gives ``stock logits - eta`` (``mode='tensor'``);
- the PEM inherits the decode head's ``ignore_index`` / ``align_corners``
  and trains with backbone and heads frozen (only ``pem.loss_npe``).

Heads that cannot carry a PEM are refused when the model is built, before
the backbone is, naming the head.
"""
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from stock_config_helpers import (DANET, ENCNET, OCRNET, R18, R18_HEADS,
                                  shrink, stock_config)

SIZE = 32

SMALL_VIT = {
    'model.backbone.img_size': (SIZE, SIZE),
    'model.backbone.embed_dims': 64,
    'model.backbone.num_heads': 2,
    'model.backbone.num_layers': 4,
    'model.backbone.out_indices': (0, 1, 2, 3),
}
SMALL_KNET = dict(
    R18, **{
        'model.auxiliary_head.in_channels': 256,
        'model.decode_head.kernel_generate_head.in_channels': 512,
        'model.decode_head.kernel_generate_head.channels': 64,
    }, **{
        f'model.decode_head.kernel_update_head.{i}.{key}': value
        for i in range(3)
        for key, value in (('in_channels', 64), ('out_channels', 64),
                           ('feedforward_channels',
                            128), ('kernel_updator_cfg.in_channels', 32),
                           ('kernel_updator_cfg.feat_channels',
                            32), ('kernel_updator_cfg.out_channels', 32))
    })

# id: (stock config, segmentor type, PEM keys as a user writes them for the
# stock model, shrink applied to NPE model and stock twin, PEM in_channels
# after the shrink).
SUPPORTED = {
    'FCN': ('fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py',
            'NPEEncoderDecoder', dict(in_channels=512, in_index=3), {}, 512),
    'PSP': ('pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
            'NPEEncoderDecoder', dict(in_channels=512, in_index=3), {}, 512),
    'ASPP (DeepLabV3)':
    ('deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
     'NPEEncoderDecoder', dict(in_channels=512, in_index=3), {}, 512),
    'DepthwiseSeparableASPP (DeepLabV3+)':
    ('deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
     'NPEEncoderDecoder', dict(in_channels=512, in_index=3), {}, 512),
    'UPer': ('upernet/upernet_r18_4xb4-160k_ade20k-512x512.py',
             'NPEEncoderDecoder', dict(in_channels=512, in_index=3), {
                 'model.decode_head.channels': 128
             }, 512),
    'DA (DANet)': (DANET[0], 'NPEEncoderDecoder',
                   dict(in_channels=2048, in_index=3), DANET[1], 512),
    'Enc (EncNet)': (ENCNET[0], 'NPEEncoderDecoder',
                     dict(in_channels=2048, in_index=3), ENCNET[1], 512),
    'OCR (OCRNet, cascade)': (OCRNET[0], 'NPECascadeEncoderDecoder', OCRNET[2],
                              OCRNET[1], [18, 36, 72, 144]),
    'Segformer': ('segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
                  'NPEEncoderDecoder', dict(in_channels=256,
                                            in_index=3), {}, 256),
    'SETR-Naive': ('setr/setr_vit-l_naive_8xb2-160k_ade20k-512x512.py',
                   'NPEEncoderDecoder', dict(in_channels=1024, in_index=3),
                   dict(
                       SMALL_VIT, **{
                           'model.decode_head.in_channels': 64,
                           'model.auxiliary_head.0.in_channels': 64,
                           'model.auxiliary_head.1.in_channels': 64,
                           'model.auxiliary_head.2.in_channels': 64,
                       }), 64),
    'SETR-MLA': ('setr/setr_vit-l_mla_8xb2-160k_ade20k-512x512.py',
                 'NPEEncoderDecoder', dict(in_channels=256, in_index=3),
                 dict(SMALL_VIT, **{'model.neck.in_channels': [64] * 4}), 256),
    'ISA': ('isanet/isanet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
            'NPEEncoderDecoder', dict(in_channels=2048,
                                      in_index=3), R18_HEADS, 512),
    'DNL': ('dnlnet/dnl_r50-d8_4xb2-40k_cityscapes-512x1024.py',
            'NPEEncoderDecoder', dict(in_channels=2048,
                                      in_index=3), R18_HEADS, 512),
    'CC (CCNet)': ('ccnet/ccnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
                   'NPEEncoderDecoder', dict(in_channels=2048,
                                             in_index=3), R18_HEADS, 512),
    'APC': ('apcnet/apcnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
            'NPEEncoderDecoder', dict(in_channels=2048,
                                      in_index=3), R18_HEADS, 512),
    'EMA': ('emanet/emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
            'NPEEncoderDecoder', dict(in_channels=2048,
                                      in_index=3), R18_HEADS, 512),
    'PSA': ('psanet/psanet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
            'NPEEncoderDecoder', dict(in_channels=2048,
                                      in_index=3), R18_HEADS, 512),
    'K-Net': ('knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py',
              'NPEEncoderDecoder', dict(in_channels=2048,
                                        in_index=3), SMALL_KNET, 512),
    'LRASPP (MobileNetV3)':
    ('mobilenet_v3/mobilenet-v3-d8-s_lraspp_4xb4-320k_cityscapes-512x1024.py',
     'NPEEncoderDecoder', dict(in_channels=576, in_index=2), {}, 576),
    'Segmenter': ('segmenter/segmenter_vit-t_mask_8xb1-160k_ade20k-512x512.py',
                  'NPEEncoderDecoder', dict(in_channels=192, in_index=-1), {
                      'model.backbone.img_size': (SIZE, SIZE),
                      'model.backbone.num_layers': 2,
                  }, 192),
    'DPT': ('dpt/dpt_vit-b16_8xb2-160k_ade20k-512x512.py', 'NPEEncoderDecoder',
            dict(in_channels=768, in_index=3),
            dict(
                SMALL_VIT, **{
                    'model.decode_head.in_channels': (64, ) * 4,
                    'model.decode_head.embed_dims': 64,
                }), 64),
    'LightHam (SegNeXt)':
    ('segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py',
     'NPEEncoderDecoder', dict(in_channels=256, in_index=3), {}, 256),
    'FCN, align_corners=True (STDC)':
    ('stdc/stdc1_4xb12-80k_cityscapes-512x1024.py', 'NPEEncoderDecoder',
     dict(in_channels=256, in_index=3), {}, 256),
}

# LRASPP pools its deepest (stride-8) feature with a fixed 49x49 kernel.
INPUT_SIZE = {'LRASPP (MobileNetV3)': 392}

# id: (stock config, segmentor type, error regex).
REFUSED = {
    'MaskFormer':
    ('maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py',
     'NPEEncoderDecoder', r'MaskFormerHead cannot carry a PEM: it is not a '
     r'BaseDecodeHead'),
    'Mask2Former':
    ('mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
     'NPEEncoderDecoder', r'Mask2FormerHead cannot carry a PEM: it is not a '
     r'BaseDecodeHead'),
    'PointRend': ('point_rend/pointrend_r50_4xb4-160k_ade20k-512x512.py',
                  'NPECascadeEncoderDecoder',
                  r'decode_head\[1\] PointHead cannot carry a PEM: its '
                  r'predict\(\) is not predict_by_feat'),
    'PointRend as NPEEncoderDecoder':
    ('point_rend/pointrend_r50_4xb4-160k_ade20k-512x512.py',
     'NPEEncoderDecoder', r"decode_head is a list of 2 heads .*"
     r"type='NPECascadeEncoderDecoder'"),
    'OCRNet as NPEEncoderDecoder':
    ('ocrnet/ocrnet_hr18s_4xb4-80k_ade20k-512x512.py', 'NPEEncoderDecoder',
     r"decode_head is a list of 2 heads .*type='NPECascadeEncoderDecoder'"),
    'FCN as NPECascadeEncoderDecoder':
    ('fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py',
     'NPECascadeEncoderDecoder',
     r'decode_head of NPECascadeEncoderDecoder must be a list'),
    'PIDNet': ('pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py',
               'NPEEncoderDecoder',
               r'PIDHead cannot carry a PEM: PIDNet\'s backbone'),
    'DDRNet': ('ddrnet/ddrnet_23-slim_in1k-pre_2xb6-120k_'
               'cityscapes-1024x1024.py', 'NPEEncoderDecoder',
               r'DDRHead cannot carry a PEM: DDRNet\'s backbone'),
}

NPE_KEYS = ('type', 'pem_head', 'scale_factor', '_scope_')


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: threads only add overhead on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def npe_config(tmp_path, stock, seg_type, pem, num_classes):
    """The documented lines on top of a stock config, as a user writes them."""
    pem = dict(type='PEMFCNHead', num_classes=num_classes, **pem)
    text = (f"_base_ = 'mmseg::{stock}'\n"
            'custom_imports = dict(imports=[\'mmnpe\'], '
            'allow_failed_imports=False)\n'
            f'model = dict(type={seg_type!r}, scale_factor=1.0, '
            f'pem_head={pem!r})\n'
            "custom_hooks = [dict(type='FrozenBackboneHook')]\n")
    path = tmp_path / 'npe_config.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def num_classes_of(cfg):
    head = cfg.model.decode_head
    if isinstance(head, list):
        head = head[-1]
    if 'num_classes' not in head:  # K-Net
        head = head.kernel_generate_head
    return head.num_classes


def metas(size, n=2):
    return [
        dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size),
            padding_size=[0, 0, 0, 0]) for _ in range(n)
    ]


def samples(num_classes, size, n=2):
    g = torch.Generator().manual_seed(1)
    out = []
    for meta in metas(size, n):
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        label[:, :8] = 255  # void rows, as mmseg pads
        out.append(
            SegDataSample(gt_sem_seg=PixelData(data=label), metainfo=meta))
    return out


def plain(z):
    """The logits of a stock ``mode='tensor'`` output (DANet / EncNet give
    a tuple whose first element is what they predict from)."""
    return z[0] if isinstance(z, (tuple, list)) else z


def final_head(model):
    head = model.decode_head
    return head[-1] if isinstance(head, nn.ModuleList) else head


@pytest.mark.parametrize('case', list(SUPPORTED))
def test_stock_config_with_npe_lines_matches_stock_logits(case, tmp_path):
    stock_path, seg_type, pem, small, pem_small = SUPPORTED[case]
    stock_cfg = stock_config(stock_path)
    num_classes = num_classes_of(stock_cfg)
    cfg = npe_config(tmp_path, stock_path, seg_type, pem, num_classes)

    # The documented lines are the only change to the model.
    ours = {k: v for k, v in cfg.model.items() if k not in NPE_KEYS}
    ref = {k: v for k, v in stock_cfg.model.items() if k != 'type'}
    assert ours == ref
    assert [h.type for h in cfg.custom_hooks] == ['FrozenBackboneHook']

    shrink(cfg, dict(small, **{'model.pem_head.in_channels': pem_small}))
    shrink(stock_cfg, small)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    assert type(model).__name__ == seg_type
    # Visible correction: a trained PEM is far from its N(0, 0.001) init.
    for p in model.pem_heads.parameters():
        nn.init.normal_(p, std=0.05)
    stock = MODELS.build(stock_cfg.model).eval()
    missing, unexpected = stock.load_state_dict(
        model.state_dict(), strict=False)
    assert not missing
    assert unexpected and all(k.startswith('pem_heads.') for k in unexpected)
    missing, unexpected = model.load_state_dict(
        stock.state_dict(), strict=False)
    assert not unexpected
    assert all(k.startswith('pem_heads.') for k in missing)

    pem_head, decode_head = model.pem_heads[0], final_head(model)
    assert pem_head.ignore_index == decode_head.ignore_index
    assert pem_head.align_corners == decode_head.align_corners

    size = INPUT_SIZE.get(case, SIZE)
    x = torch.randn(
        2, 3, size, size, generator=torch.Generator().manual_seed(1))

    def seeded(fn, *args, **kwargs):
        # LightHamHead draws random NMF bases at every forward.
        torch.manual_seed(2)
        return fn(*args, **kwargs)

    with torch.no_grad():
        z = plain(seeded(stock, x, mode='tensor'))
        ref_logits = seeded(stock.inference, x, metas(size))
        assert ref_logits.shape == (2, num_classes, size, size)
        model.scale_factor = 0.0
        assert torch.equal(seeded(model.inference, x, metas(size)), ref_logits)

        model.scale_factor = 1.0
        eta = model.estimate_prior(model.extract_feat(x))
        if eta.shape[2:] != z.shape[2:]:
            eta = nn.functional.interpolate(
                eta,
                size=z.shape[2:],
                mode='bilinear',
                align_corners=model.align_corners)
        assert eta.abs().max() > 1e-3
        torch.testing.assert_close(seeded(model, x, mode='tensor'), z - eta)

    # PEM training as FrozenBackboneHook leaves the model: only the PEM.
    model.train()
    for name in ('backbone', 'neck', 'decode_head', 'auxiliary_head'):
        module = getattr(model, name, None)
        if module is not None:
            # mmseg backbones' train() returns None: no chaining.
            module.eval()
            module.requires_grad_(False)
    losses = model.loss(x, samples(num_classes, size))
    assert set(losses) == {'pem.loss_npe'}
    assert torch.isfinite(losses['pem.loss_npe'])
    losses['pem.loss_npe'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.pem_heads.parameters())


@pytest.mark.parametrize('case', list(REFUSED))
def test_head_that_cannot_carry_a_pem_is_refused_before_the_backbone(
        case, tmp_path, monkeypatch):
    stock_path, seg_type, message = REFUSED[case]
    stock_cfg = stock_config(stock_path)
    cfg = npe_config(tmp_path, stock_path, seg_type,
                     dict(in_channels=256, in_index=3),
                     num_classes_of(stock_cfg))
    built = []
    build = MODELS.build

    def recording_build(cfg, *args, **kwargs):
        built.append(cfg.get('type'))
        return build(cfg, *args, **kwargs)

    monkeypatch.setattr(MODELS, 'build', recording_build)
    with pytest.raises(TypeError, match=message):
        MODELS.build(cfg.model)
    assert built == [seg_type]  # neither backbone nor heads were built

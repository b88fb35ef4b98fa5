"""mmseg's own configs, loaded from the installed package and shrunk for the
CPU the way mmseg's r18 configs shrink r50 ones (a test-only adaptation:
depth / width, head widths and the matching ``in_channels``, never the head
type or its feature wiring; no pretrained weights)."""
import copy
import os.path as osp

import mmseg
from helpers import tiny_runner_cfg
from mmengine.config import Config

MIM = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')

# Shrinks (dotted keys, as --cfg-options): ResNet-50 -> 18 as mmseg's r18
# configs do (stage widths / 4), and narrower heads.
R18 = {'model.backbone.depth': 18}
R18_HEADS = dict(
    R18, **{
        'model.decode_head.in_channels': 512,
        'model.decode_head.channels': 64,
        'model.auxiliary_head.in_channels': 256,
        'model.auxiliary_head.channels': 32,
    })

# Stock configs of the segmentors whose decode path is not a plain
# ``decode_head.forward()``: (config, shrink, PEM keys on the feature the
# decode head reads, after the shrink).
OCRNET = ('ocrnet/ocrnet_hr18s_4xb4-80k_ade20k-512x512.py', {},
          dict(
              in_channels=[18, 36, 72, 144],
              in_index=(0, 1, 2, 3),
              input_transform='resize_concat'))
DANET = ('danet/danet_r50-d8_4xb4-80k_ade20k-512x512.py', R18_HEADS,
         dict(in_channels=512, in_index=3))
R18_ENC = dict(R18_HEADS, **{'model.decode_head.in_channels': [128, 256, 512]})
ENCNET = ('encnet/encnet_r50-d8_4xb2-40k_cityscapes-512x1024.py', R18_ENC,
          dict(in_channels=512, in_index=3))


def stock_config(stock: str) -> Config:
    # Mask2Former's config imports mmdet, which is not installed here; the
    # NPE config's custom_imports replaces that list.
    return Config.fromfile(osp.join(MIM, stock), import_custom_modules=False)


def shrink(cfg: Config, options: dict) -> Config:
    """Test-only: small backbone, no pretrained weights anywhere."""
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.pop('pretrained', None)
    cfg.merge_from_dict(options, allow_list_keys=True)
    return cfg


def _heads(model_cfg) -> list:
    out = []
    for key in ('decode_head', 'auxiliary_head'):
        head = model_cfg.get(key)
        if head is None:
            continue
        out += list(head) if isinstance(head, (list, tuple)) else [head]
    return out


def tiny_stock_runner_cfg(stock: str,
                          options: dict,
                          work_dir: str,
                          data_root: str,
                          size: int = 32,
                          **model_keys) -> Config:
    """A stock mmseg config, shrunk, with ``model_keys`` (the segmentor
    ``type`` and its keys) on top, its heads set to the 6 classes of the
    synthetic set in ``data_root``, read (32x32 images) and evaluated as
    :func:`tiny_runner_cfg` does. Everything but the model (data, loops,
    hooks) is the tiny runner config's."""
    cfg = shrink(stock_config(stock), options)
    model = copy.deepcopy(cfg.model)
    for head in _heads(model):
        head.num_classes = 6
    model.data_preprocessor.size = (size, size)
    model.update(model_keys)
    tiny = tiny_runner_cfg(work_dir, data_root)
    tiny.update(
        model=model.to_dict(),
        custom_imports=dict(imports=['mmnpe'], allow_failed_imports=False),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice']))
    tiny['val_evaluator'] = tiny['test_evaluator']
    return Config(tiny)


def stock_twin_cfg(cfg: Config, *drop: str) -> Config:
    """The model config of the stock segmentor under ``cfg``: mmseg's type
    back, the mmnpe keys ``drop`` removed."""
    model = copy.deepcopy(cfg.model)
    model.type = ('CascadeEncoderDecoder'
                  if 'Cascade' in model.type else 'EncoderDecoder')
    for key in drop:
        model.pop(key)
    return model

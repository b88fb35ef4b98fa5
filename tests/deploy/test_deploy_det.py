"""MMDeploy / ONNX Runtime export of two-stage detectors: the torch
compatibility shim, and parity of the exported detections with mmdet's
PyTorch ones for the mmnpe box heads and losses (a stock model as control).

Each case exports the demo's tiny Faster R-CNN (configs/demo, 96 x 96
input, random weights with spread scores) through
``mmdeploy.apis.torch2onnx`` with mmdeploy's ONNX Runtime detection deploy
config, runs it in ONNX Runtime with mmdeploy's custom-op library and
matches its detections with mmdet's ``predict`` of the same weights and
input.
"""
import copy
import os.path as osp

import numpy as np
import pytest

pytest.importorskip('mmdet', reason='the detection adapter needs mmdet')
pytest.importorskip('mmdeploy', reason='the deploy adapter needs mmdeploy')
ort = pytest.importorskip('onnxruntime')

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import mmnpe  # noqa: E402,F401  (registers the rewriters)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
SIZE = 96

#: mmdeploy 1.3.1's configs/mmdet/detection/detection_onnxruntime_static.py
#: with its _base_ files expanded (the wheel does not ship the configs).
DEPLOY_STATIC = dict(
    onnx_config=dict(
        type='onnx',
        export_params=True,
        keep_initializers_as_inputs=False,
        opset_version=11,
        save_file='end2end.onnx',
        input_names=['input'],
        output_names=['dets', 'labels'],
        input_shape=None,
        optimize=True),
    codebase_config=dict(
        type='mmdet',
        task='ObjectDetection',
        model_type='end2end',
        post_processing=dict(
            score_threshold=0.05,
            confidence_threshold=0.005,
            iou_threshold=0.5,
            max_output_boxes_per_class=200,
            pre_top_k=5000,
            keep_top_k=100,
            background_label_id=-1)),
    backend_config=dict(type='onnxruntime'))
#: ... detection_onnxruntime_dynamic.py: batch and image size dynamic.
DEPLOY_DYNAMIC = copy.deepcopy(DEPLOY_STATIC)
DEPLOY_DYNAMIC['onnx_config']['dynamic_axes'] = {
    'input': {
        0: 'batch',
        2: 'height',
        3: 'width'
    },
    'dets': {
        0: 'batch',
        1: 'num_dets'
    },
    'labels': {
        0: 'batch',
        1: 'num_dets'
    },
}


def _opset(deploy: dict, opset: int) -> dict:
    deploy = copy.deepcopy(deploy)
    deploy['onnx_config']['opset_version'] = opset
    return deploy


#: Long-tailed instance counts of the 12 demo classes (post-hoc LA's prior).
COUNTS = [400, 250, 160, 100, 64, 40, 25, 16, 10, 6, 4, 2]

#: The test-time setting of the parity cases: mmdet's stock R-CNN one (the
#: demo's LVIS setting keeps 300 boxes down to score 1e-4, mostly near-ties
#: of a random-weight model).
RCNN_TEST = dict(
    score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)

_CONFIGS = dict(
    stock='faster-rcnn_r18-tiny_fpn_synthetic-lvis.py',
    npe='faster-rcnn_r18-tiny_fpn_npe_synthetic-lvis.py',
    cascade='faster-rcnn_r18-tiny_fpn_npe_synthetic-lvis.py',
    posthoc='faster-rcnn_r18-tiny_fpn_la-posthoc_synthetic-lvis.py',
    sigmoid='faster-rcnn_r18-tiny_fpn_balanced-sigmoid_synthetic-lvis.py')


def _model_cfg(variant: str) -> Config:
    """The demo detector config of ``variant``, ready for torch2onnx;
    ``cascade``: a 3-stage NPECascadeRoIHead of the NPE demo's box head."""
    cfg = Config.fromfile(osp.join(DEMO, _CONFIGS[variant]))
    cfg.load_from = None
    cfg.model.test_cfg.rcnn = Config(RCNN_TEST)
    head = cfg.model.roi_head.bbox_head
    if variant == 'posthoc':
        head.loss_cls.class_counts = COUNTS
    if variant == 'cascade':
        stages = []
        for _ in range(3):
            stage = Config(head.to_dict())
            stage.reg_class_agnostic = True
            stages.append(stage)
        cfg.model.roi_head = dict(
            type='NPECascadeRoIHead',
            num_stages=3,
            stage_loss_weights=[1, 0.5, 0.25],
            bbox_roi_extractor=cfg.model.roi_head.bbox_roi_extractor,
            bbox_head=stages)
        cfg.model.train_cfg.rcnn = [cfg.model.train_cfg.rcnn] * 3
    return cfg


def _random_weights(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights that give a random-weight detector spread scores, boxes that
    depend on the class, and (NPE) a PEM estimate far from constant."""
    gen = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        std = dict(
            fc_cls=0.3, fc_reg=0.05, pems=0.5).get(name.rsplit('.', 1)[-1])
        if std is None:
            continue
        with torch.no_grad():
            module.weight.copy_(
                torch.randn(module.weight.shape, generator=gen) * std)
            module.bias.copy_(
                torch.randn(module.bias.shape, generator=gen) * std)


def _image(seed: int = 0) -> np.ndarray:
    """A 96 x 96 BGR image of a few coloured rectangles on noise."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    for _ in range(6):
        x, y = rng.integers(0, SIZE - 24, 2)
        w, h = rng.integers(12, 40, 2)
        img[y:y + h, x:x + w] = rng.integers(80, 255, 3, dtype=np.uint8)
    return img


def _ort_session(path: str):
    """An ONNX Runtime CPU session with mmdeploy's custom-op library."""
    from mmdeploy.backend.onnxruntime.init_plugins import get_ops_path
    options = ort.SessionOptions()
    ops = get_ops_path()
    assert osp.isfile(ops), 'mmdeploy wheel without its ONNX Runtime ops'
    options.register_custom_ops_library(ops)
    return ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


class Exported:
    """A variant exported by torch2onnx: the PyTorch model mmdeploy builds
    from the same config and checkpoint, the input and the session."""

    def __init__(self,
                 tmp_path,
                 variant: str,
                 deploy: dict,
                 model_cfg: Config = None) -> None:
        from mmdeploy.apis import torch2onnx
        from mmdeploy.apis.utils import build_task_processor
        from mmengine.runner import save_checkpoint
        init_default_scope('mmdet')
        self.model_cfg = model_cfg or _model_cfg(variant)
        self.deploy_cfg = Config(deploy)
        task = build_task_processor(self.model_cfg, self.deploy_cfg, 'cpu')
        torch.manual_seed(0)
        model = task.build_pytorch_model(None)
        _random_weights(model)
        ckpt = str(tmp_path / f'{variant}.pth')
        save_checkpoint(model.state_dict(), ckpt)
        img = _image()
        torch2onnx(img, str(tmp_path), f'{variant}.onnx', self.deploy_cfg,
                   self.model_cfg, ckpt, 'cpu')
        self.model = task.build_pytorch_model(ckpt).eval()
        self.data, self.inputs = task.create_input(
            img, None, self.model.data_preprocessor)
        self.session = _ort_session(str(tmp_path / f'{variant}.onnx'))

    def proposals(self) -> torch.Tensor:
        """The RPN proposals of the exported graph, (N, 4): mmdeploy's RPN
        rewrite run in PyTorch (one NMS over all levels; mmdet's RPN runs
        one per level, see docs/user_guides/deployment.md#detection)."""
        from mmdeploy.core import RewriterContext
        opset = self.deploy_cfg.onnx_config.opset_version
        with RewriterContext(
                cfg=self.deploy_cfg, backend='onnxruntime',
                opset=opset), torch.no_grad():
            feats = self.model.extract_feat(self.inputs)
            dets, _ = self.model.rpn_head.predict(
                feats, self.data['data_samples'], rescale=False)
        assert bool((dets[0, :, 4] > 0).all()), 'padded proposals'
        return dets[0, :, :4]

    def torch_dets(self, proposals=None):
        """mmdet's detections in PyTorch, (boxes, scores, labels); on the
        given proposals instead of mmdet's RPN's where there are some."""
        from mmengine.structures import InstanceData
        samples = self.data['data_samples']
        with torch.no_grad():
            if proposals is None:
                pred = self.model.predict(
                    self.inputs, samples, rescale=False)[0].pred_instances
            else:
                feats = self.model.extract_feat(self.inputs)
                pred = self.model.roi_head.predict(
                    feats, [InstanceData(bboxes=proposals)],
                    samples,
                    rescale=False)[0]
        return (pred.bboxes.numpy(), pred.scores.numpy(), pred.labels.numpy())

    def ort_dets(self, inputs=None):
        """The ONNX Runtime detections of the first image, score > 0 (the
        padding rows dropped, as mmdeploy's wrappers do)."""
        inputs = self.inputs if inputs is None else inputs
        dets, labels = self.session.run(['dets', 'labels'],
                                        {'input': inputs.numpy()})
        keep = dets[0, :, 4] > 0
        return dets[0, keep, :4], dets[0, keep, 4], labels[0, keep]


def unmatched(a, b, tol: float = 1e-3) -> np.ndarray:
    """Indices of the detections of ``a`` with no detection of ``b`` of the
    same label, box within ``tol`` (pixels) and score within ``tol``
    (one-to-one, best score first)."""
    boxes_a, scores_a, labels_a = a
    boxes_b, scores_b, labels_b = b
    free = np.ones(len(scores_b), dtype=bool)
    missing = []
    for i in np.argsort(-scores_a, kind='stable'):
        ok = (
            free & (labels_b == labels_a[i])
            & (np.abs(boxes_b - boxes_a[i]).max(axis=1, initial=0) <= tol)
            & (np.abs(scores_b - scores_a[i]) <= tol))
        hits = np.flatnonzero(ok)
        if len(hits):
            free[hits[np.argmin(np.abs(scores_b[hits] - scores_a[i]))]] = 0
        else:
            missing.append(i)
    return np.asarray(missing, dtype=int)


def top(dets, k: int):
    order = np.argsort(-dets[1], kind='stable')[:k]
    return tuple(d[order] for d in dets)


# -- the torch 2.14 compatibility shim ------------------------------------


class _LongIndices(torch.autograd.Function):
    """Casts to int64 with the opset-9 helper that mmdeploy 1.3.1's RoIAlign
    symbolic imports."""

    @staticmethod
    def forward(ctx, x):
        return x.long()

    @staticmethod
    def symbolic(g, x):
        from torch.onnx.symbolic_opset9 import _cast_Long
        return _cast_Long(g, x, False)


class _Net(torch.nn.Module):

    def forward(self, x):
        return _LongIndices.apply(x * 2)


def test_compat_shim_torchscript_exporter_and_cast_long(tmp_path):
    """Inside mmdeploy's export context ``torch.onnx.export`` is the
    TorchScript-based exporter (the opset asked for, the autograd
    Function's symbolic used) and ``symbolic_opset9`` has ``_cast_Long``;
    outside it both are torch's own."""
    import onnx
    import torch.onnx.symbolic_opset9 as opset9
    from mmdeploy.core import RewriterContext

    from mmnpe.deploy import compat
    original = torch.onnx.export
    had_cast_long = hasattr(opset9, '_cast_Long')
    path = str(tmp_path / 'net.onnx')
    with RewriterContext(
            cfg=Config(DEPLOY_STATIC), backend='onnxruntime', opset=11):
        assert torch.onnx.export is not original
        torch.onnx.export(_Net(), (torch.rand(3), ), path, opset_version=11)
    assert torch.onnx.export is original
    assert hasattr(opset9, '_cast_Long') == had_cast_long
    graph = onnx.load(path)
    assert graph.opset_import[0].version == 11
    casts = [
        a.i for node in graph.graph.node if node.op_type == 'Cast'
        for a in node.attribute if a.name == 'to'
    ]
    assert casts == [onnx.TensorProto.INT64]
    # The shim's reason: on the tested torch (2.14) dynamo is the default.
    from packaging.version import Version
    if Version(torch.__version__.split('+')[0]) >= Version('2.14'):
        assert compat.onnx_export_defaults_to_dynamo(original)


# -- parity of the exported detectors --------------------------------------

#: Exact parity needs opset >= 16: with mmdeploy's opset-11 configs ONNX
#: RoiAlign lacks mmcv's ``aligned`` mode and pools RoIs smaller than one
#: feature-map cell differently (test_shipped_opset11_config).
DEPLOY_EXACT = _opset(DEPLOY_STATIC, 16)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """One export per (variant, deploy config) for the module's tests."""
    cache = {}

    def get(variant: str, deploy: dict = DEPLOY_EXACT) -> Exported:
        key = (variant, repr(deploy))
        if key not in cache:
            cache[key] = Exported(
                tmp_path_factory.mktemp(variant), variant, deploy)
        return cache[key]

    return get


def _set_correction(model, on: bool) -> None:
    """Switch the model's prior correction off (alpha = 0, tau = 0) or back
    to the variant's value (1)."""
    heads = model.roi_head.bbox_head
    for head in heads if isinstance(heads, torch.nn.ModuleList) else [heads]:
        if hasattr(head, 'scale_factor'):
            head.scale_factor = 1.0 if on else 0.0
        if hasattr(head.loss_cls, 'tau'):
            head.loss_cls.tau = 1.0 if on else 0.0


@pytest.mark.parametrize('variant',
                         ['stock', 'npe', 'cascade', 'posthoc', 'sigmoid'])
def test_exported_detections_match_pytorch(exported, variant):
    """ONNX Runtime = mmdet on the same proposals: every detection, label,
    box and score within 1e-3, both ways (mmdeploy's own box head rewrite
    misses 10 of 100 for the stock model, 12 for NPE-LA and all 100 for the
    NPE cascade, and fails to export post-hoc LA and Balanced Sigmoid).
    End to end, with mmdet's own RPN, the 10 best detections match too."""
    case = exported(variant)
    onnx_dets = case.ort_dets()
    proposals = case.proposals()
    torch_dets = case.torch_dets(proposals)
    assert len(torch_dets[1]) == len(onnx_dets[1]) > 20
    assert len(unmatched(torch_dets, onnx_dets)) == 0
    assert len(unmatched(onnx_dets, torch_dets)) == 0
    assert len(unmatched(top(case.torch_dets(), 10), onnx_dets)) == 0
    if variant in ('npe', 'cascade', 'posthoc'):
        # The correction is not trivial: without it > 20 % of the
        # detections change.
        _set_correction(case.model, on=False)
        try:
            plain = case.torch_dets(proposals)
        finally:
            _set_correction(case.model, on=True)
        assert len(unmatched(torch_dets, plain)) > 0.2 * len(torch_dets[1])


def test_dynamic_config_other_image_size(exported):
    """mmdeploy's dynamic ONNX Runtime config: the graph exported on a 96 x
    96 image runs on a 96 x 64 one (the test pipeline's Resize keeps it)
    and still matches mmdet there."""
    case = exported('npe', _opset(DEPLOY_DYNAMIC, 16))
    from mmdeploy.apis.utils import build_task_processor
    task = build_task_processor(case.model_cfg, case.deploy_cfg, 'cpu')
    data, inputs = task.create_input(
        _image(1)[:64], None, case.model.data_preprocessor)
    assert tuple(inputs.shape[-2:]) == (64, 96)
    case.data, case.inputs = data, inputs
    onnx_dets = case.ort_dets()
    torch_dets = case.torch_dets(case.proposals())
    assert len(torch_dets[1]) == len(onnx_dets[1]) > 20
    assert len(unmatched(torch_dets, onnx_dets)) == 0
    assert len(unmatched(onnx_dets, torch_dets)) == 0


def test_shipped_opset11_config(exported):
    """mmdeploy's static ONNX Runtime config as shipped (opset 11): it
    exports and runs; the best detections match mmdet; only detections of
    RoIs under one feature-map cell differ (ONNX RoiAlign-11 has no
    ``aligned`` mode and pools at least one cell)."""
    case = exported('npe', DEPLOY_STATIC)
    onnx_dets = case.ort_dets()
    torch_dets = case.torch_dets(case.proposals())
    assert len(unmatched(top(case.torch_dets(), 10), onnx_dets)) == 0
    missing = unmatched(torch_dets, onnx_dets)
    assert len(missing) <= 0.05 * len(torch_dets[1])
    boxes = torch_dets[0][missing]
    # Finest level stride 4: a cell is 4 px.
    assert bool((np.minimum(boxes[:, 2] - boxes[:, 0],
                            boxes[:, 3] - boxes[:, 1]) < 8).all())


# -- what the export refuses -----------------------------------------------


def test_posthoc_without_counts_refused(tmp_path):
    """Post-hoc LA needs its counts in the config or the checkpoint
    (ClassCountsHook does not run in an export)."""
    cfg = _model_cfg('posthoc')
    cfg.model.roi_head.bbox_head.loss_cls.pop('class_counts')
    with pytest.raises(RuntimeError, match='class_counts is not set'):
        Exported(tmp_path, 'posthoc', DEPLOY_EXACT, model_cfg=cfg)


def test_cascade_class_specific_stage_refused(tmp_path):
    cfg = _model_cfg('cascade')
    cfg.model.roi_head.bbox_head[0].reg_class_agnostic = False
    with pytest.raises(ValueError, match=r'bbox_head\[0\] must be class-'):
        Exported(tmp_path, 'cascade', DEPLOY_EXACT, model_cfg=cfg)


@pytest.mark.parametrize('nms, match', [
    (dict(type='soft_nms', iou_threshold=0.5), "nms.type must be 'nms'"),
    (dict(type='nms', iou_threshold=0.5,
          class_agnostic=True), 'class_agnostic=True does not export'),
])
def test_nms_other_than_per_class_refused(tmp_path, nms, match):
    """The ONNX Runtime box-head rewrite runs mmdet's default per-class
    NMS; other settings would export something else, so they stop it."""
    cfg = _model_cfg('stock')
    cfg.model.test_cfg.rcnn.nms = nms
    with pytest.raises(ValueError, match=match):
        Exported(tmp_path, 'stock', DEPLOY_EXACT, model_cfg=cfg)


def measure(
        variants=('stock', 'npe', 'cascade', 'posthoc', 'sigmoid'),
        opset: int = 16) -> None:
    """Print, per variant, the detections (of 100) that ONNX Runtime and
    mmdet disagree on, with mmnpe's two detection rewriters and with
    mmdeploy's own rewrites alone (the figures of
    docs/user_guides/deployment.md#detection)."""
    import tempfile
    from pathlib import Path

    from mmdeploy.core import FUNCTION_REWRITER

    from mmnpe.deploy import mmdet_rewriters
    ours = (mmdet_rewriters.bbox_head__predict_by_feat,
            mmdet_rewriters.npe_cascade_roi_head__predict_bbox)
    registry = FUNCTION_REWRITER._registry
    saved = {
        name: list(records)
        for name, records in registry._rewrite_records.items()
    }
    deploy = _opset(DEPLOY_STATIC, opset)
    print(f'opset {opset}; unmatched (ONNX Runtime vs mmdet, same '
          'proposals) / mmdet detections')
    for alone in (False, True):
        if alone:
            for rewriter in ours:
                registry.remove_record(rewriter)
        for variant in variants:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    case = Exported(Path(tmp), variant, deploy)
                except Exception as exc:  # noqa: BLE001  (reported)
                    result = f'export fails: {type(exc).__name__}: {exc}'
                else:
                    dets = case.torch_dets(case.proposals())
                    missing = unmatched(dets, case.ort_dets())
                    result = f'{len(missing)} / {len(dets[1])}'
            who = 'mmdeploy alone' if alone else 'with mmnpe'
            print(f'{who:15s} {variant:8s} {result[:160]}')
    registry._rewrite_records.clear()
    registry._rewrite_records.update(saved)


if __name__ == '__main__':
    # python tests/deploy/test_deploy_det.py [OPSET]
    import sys
    torch.set_num_threads(1)
    measure(opset=int(sys.argv[1]) if len(sys.argv) > 1 else 16)

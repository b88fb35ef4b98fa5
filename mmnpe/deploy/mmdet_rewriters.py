"""MMDeploy rewriters of the two-stage detector parts that carry mmnpe's
corrections.

MMDeploy replaces mmdet's test-time box post-processing and Cascade R-CNN's
stage loop with its own graph-friendly versions
(``mmdeploy/codebase/mmdet/models/roi_heads``). Three of its steps would
not give the prediction mmdet gives for an mmnpe detector:

- ``BBoxHead.predict_by_feat`` hands the loss's ``get_activation`` the
  batched ``(B, N, C')`` logits, while mmdet calls it on ``(N, C')``. The
  RoI losses compute over the class axis ``dim=1``: post-hoc LA
  (:class:`PostHocLARoILoss`) refuses the shape, Balanced Sigmoid
  (:class:`BalancedSigmoidRoILoss`) sums its sigmoids over the RoIs into a
  wrong background row. It then keeps, of a class-specific regressor, only
  the box of each RoI's top class and scores every class with that box;
  mmdet scores class ``j`` with the box regressed for ``j``. Both matter
  more once a correction moves the classes' scores (NPE-LA, post-hoc LA)
  or scores each class on its own (sigmoids).
- ``CascadeRoIHead.predict_bbox`` averages the stages' logits without
  :class:`NPECascadeRoIHead`'s ``_refine_roi``, so each stage's corrected
  logits would be averaged instead of the plain logits corrected once with
  the mean correction, which is what keeps ``p_bg`` the stock cascade's.

The rewriters below compute what mmdet computes in PyTorch, with ONNX ops:

- :func:`bbox_head__predict_by_feat` (ONNX Runtime backend): the activation
  on ``(B * N, C')`` logits, mmdet's, the loss's ``get_activation`` where
  the loss has one; class ``j`` scored with its own box; NMS per image and
  class (ONNX ``NonMaxSuppression`` with the image-class pairs as its batch,
  so boxes of different classes never suppress each other, as mmdet's
  ``batched_nms``) with ``rcnn.score_thr``, ``rcnn.nms.iou_threshold`` and
  ``rcnn.max_per_img``; the ``max_per_img`` best of each image. The
  outputs are mmdeploy's: ``dets`` (B, max_per_img, 5) and ``labels`` (B,
  max_per_img), padded with score-0 rows that mmdeploy's wrappers and SDK
  drop. It serves every ``BBoxHead`` of a model exported to ONNX Runtime
  with mmnpe imported, stock heads included: their exported detections then
  are mmdet's too.
- :func:`npe_cascade_roi_head__predict_bbox`: the cascade's stages with the
  mean correction applied once, as :class:`NPECascadeRoIHead` does.

NPE box heads need nothing else: their eval-mode ``forward`` returns the
corrected logits, and mmdeploy's RoI head calls it. ``target_prior`` has no
detection counterpart (the box heads and RoI losses do not take it).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdeploy.core import FUNCTION_REWRITER
from torch import Tensor

__all__ = [
    'bbox_head__predict_by_feat', 'class_wise_nms', 'head_scores',
    'npe_cascade_roi_head__predict_bbox'
]


def _box_tensor(boxes) -> Tensor:
    """The (..., 4) tensor of an mmdet box type, or the tensor itself (what
    mmdet's ``get_box_tensor`` does; mmdet is imported by mmnpe.det only).
    """
    return getattr(boxes, 'tensor', boxes)


def head_scores(head, cls_scores: Tensor) -> Tensor:
    """The box head's test-time foreground scores, (B, N, C).

    Args:
        head (BBoxHead): The head that produced the logits.
        cls_scores (Tensor): Its logits, (B, N, C') (``C' = C + 1`` with a
            background channel, ``C`` for a sigmoid classifier).

    Returns:
        Tensor: mmdet's scores of the C foreground classes: the loss's
        ``get_activation`` where it has one (called on (B * N, C') logits,
        as mmdet calls it), else the softmax.
    """
    batch, rois = cls_scores.shape[:2]
    flat = cls_scores.reshape(-1, cls_scores.size(-1))
    # mmdet's BBoxHead._predict_by_feat_single keys this on
    # custom_cls_channels.
    if head.custom_cls_channels:
        scores = head.loss_cls.get_activation(flat)
    else:
        scores = F.softmax(flat, dim=-1)
    return scores[:, :head.num_classes].reshape(batch, rois, head.num_classes)


def class_wise_nms(boxes: Tensor, scores: Tensor, iou_threshold: float,
                   score_threshold: float,
                   max_per_img: int) -> Tuple[Tensor, Tensor]:
    """NMS of each image and class on the class's own boxes, then the
    ``max_per_img`` best detections of each image (mmdet's
    ``multiclass_nms``).

    Args:
        boxes (Tensor): (B, N, C, 4), ``x1, y1, x2, y2``.
        scores (Tensor): (B, N, C).
        iou_threshold (float): A box whose IoU with a kept box of its class
            is above it is dropped.
        score_threshold (float): Only scores above it are kept.
        max_per_img (int): Detections per image, > 0.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` (B, max_per_img, 5), boxes and score,
        best first, and ``labels`` (B, max_per_img), int64; rows past the
        image's detections have score 0.
    """
    # Imported here: mmdeploy's mmcv and mmdet packages register all of
    # mmdeploy's rewriters, which only an export needs.
    from mmdeploy.mmcv.ops.nms import ONNXNMSop
    batch, rois, classes = scores.shape
    # ONNX NonMaxSuppression shares the boxes over its classes; its batch
    # axis does not, so every (image, class) pair becomes one batch entry.
    nms_boxes = boxes.permute(0, 2, 1, 3).reshape(-1, rois, 4)
    nms_scores = scores.permute(0, 2, 1).reshape(-1, 1, rois)
    selected = ONNXNMSop.apply(
        nms_boxes, nms_scores, max_per_img,
        torch.tensor([iou_threshold], dtype=torch.float32),
        torch.tensor([score_threshold], dtype=torch.float32))
    pair, box = selected[:, 0], selected[:, 2]
    det_boxes = nms_boxes[pair, box]
    det_scores = nms_scores[pair, 0, box]
    image = torch.div(pair, classes, rounding_mode='floor')
    label = pair - image * classes
    mine = image.unsqueeze(0) == torch.arange(
        batch, device=image.device).unsqueeze(1)
    per_image = torch.where(mine, det_scores.unsqueeze(0),
                            torch.zeros_like(det_scores).unsqueeze(0))
    # max_per_img zero-score columns: top-k needs that many entries even
    # when an image has fewer detections.
    per_image = F.pad(per_image, (0, max_per_img))
    top_scores, top = per_image.topk(max_per_img, dim=1)
    det_boxes = F.pad(det_boxes, (0, 0, 0, max_per_img))[top]
    labels = F.pad(label, (0, max_per_img))[top]
    real = top_scores > 0
    det_boxes = torch.where(
        real.unsqueeze(-1), det_boxes, torch.zeros_like(det_boxes))
    dets = torch.cat([det_boxes, top_scores.unsqueeze(-1)], dim=-1)
    return dets, labels


@FUNCTION_REWRITER.register_rewriter(
    'mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.predict_by_feat',
    backend='onnxruntime')
def bbox_head__predict_by_feat(self,
                               rois: Tensor,
                               cls_scores: Tensor,
                               bbox_preds: Optional[Tensor],
                               batch_img_metas: List[dict],
                               rcnn_test_cfg=None,
                               rescale: bool = False) -> Tuple[Tensor, Tensor]:
    """mmdet's box post-processing of a batch, for ONNX Runtime (module
    docstring).

    Args:
        rois (Tensor): (B, N, 5), batch index then ``x1, y1, x2, y2``.
        cls_scores (Tensor): (B, N, C').
        bbox_preds (Tensor, optional): (B, N, 4 * C) or (B, N, 4) (class
            agnostic); None keeps the RoIs.
        batch_img_metas (list[dict]): ``img_shape`` of the input.
        rcnn_test_cfg (ConfigDict): ``score_thr``, ``nms``, ``max_per_img``.
        rescale (bool): Ignored: mmdeploy's wrappers rescale the outputs.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` (B, max_per_img, 5) and ``labels``
        (B, max_per_img).
    """
    from mmdeploy.codebase.mmdet.deploy import get_post_processing_params
    ctx = FUNCTION_REWRITER.get_context()
    if rois.ndim != 3:
        raise ValueError('BBoxHead.predict_by_feat: the export needs batched '
                         f'RoIs (B, N, 5), got {tuple(rois.shape)}')
    post_params = get_post_processing_params(ctx.cfg)
    rcnn_test_cfg = rcnn_test_cfg if rcnn_test_cfg is not None else {}
    nms_cfg = rcnn_test_cfg.get('nms', None) or {}
    nms_type = nms_cfg.get('type', 'nms')
    if nms_type != 'nms':
        raise ValueError(
            f'{type(self).__name__}: test_cfg.rcnn.nms.type must be \'nms\' '
            f'for the ONNX Runtime export (ONNX NonMaxSuppression), got '
            f'{nms_type!r}')
    if nms_cfg.get('class_agnostic', False):
        raise ValueError(
            f'{type(self).__name__}: test_cfg.rcnn.nms.class_agnostic=True '
            'does not export to ONNX Runtime with mmnpe (NMS runs per class, '
            'as mmdet\'s default); got nms={nms_cfg!r}')
    iou_threshold = nms_cfg.get('iou_threshold', post_params.iou_threshold)
    score_threshold = rcnn_test_cfg.get('score_thr',
                                        post_params.score_threshold)
    max_per_img = rcnn_test_cfg.get('max_per_img', post_params.keep_top_k)
    if not isinstance(max_per_img, int) or max_per_img <= 0:
        raise ValueError(f'{type(self).__name__}: test_cfg.rcnn.max_per_img '
                         'must be an int > 0 for the export (the outputs\' '
                         f'fixed length), got {max_per_img!r}')

    scores = head_scores(self, cls_scores)
    batch, num_rois, classes = scores.shape
    img_shape = batch_img_metas[0]['img_shape']
    if bbox_preds is not None:
        bboxes = _box_tensor(
            self.bbox_coder.decode(
                rois[..., 1:], bbox_preds, max_shape=img_shape))
    else:
        bboxes = rois[..., 1:]
        max_xy = bboxes.new_tensor(img_shape[:2]).flip(-1).repeat(2)
        bboxes = torch.min(bboxes.clamp(min=0), max_xy)
    if self.reg_class_agnostic or bbox_preds is None:
        bboxes = bboxes.reshape(batch, num_rois, 1,
                                4).expand(batch, num_rois, classes, 4)
    else:
        bboxes = bboxes.reshape(batch, num_rois, classes, 4)
    return class_wise_nms(bboxes, scores, float(iou_threshold),
                          float(score_threshold), max_per_img)


@FUNCTION_REWRITER.register_rewriter(
    'mmnpe.det.roi_heads.npe_cascade_roi_head.NPECascadeRoIHead.predict_bbox')
def npe_cascade_roi_head__predict_bbox(self,
                                       x: Tuple[Tensor],
                                       batch_img_metas: List[dict],
                                       rpn_results_list: List[Tensor],
                                       rcnn_test_cfg,
                                       rescale: bool = False,
                                       **kwargs) -> Tuple[Tensor, Tensor]:
    """:class:`NPECascadeRoIHead`'s prediction for the export: the stages'
    plain logits averaged, the stages' mean NPE correction applied once by
    the last stage, then the last stage's ``predict_by_feat``.

    Args:
        x (tuple[Tensor]): Feature maps of the levels.
        batch_img_metas (list[dict]): ``img_shape`` of the input.
        rpn_results_list (list[Tensor]): ``[proposals]``, (B, N, 5) (boxes
            and score), as mmdeploy's RPN gives them.
        rcnn_test_cfg (ConfigDict): ``test_cfg.rcnn``.
        rescale (bool): Passed on.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` and ``labels`` of the last stage's
        ``predict_by_feat``.
    """
    proposals = rpn_results_list[0]
    batch, num_rois = proposals.shape[:2]
    batch_index = torch.arange(
        batch,
        device=proposals.device).float().view(-1, 1,
                                              1).expand(batch, num_rois, 1)
    rois = torch.cat([batch_index, proposals[..., :4]], dim=-1).reshape(-1, 5)
    max_shape = batch_img_metas[0]['img_shape']
    corrections: List[Tensor] = []
    for head in self.bbox_head:
        head.collected_corrections = corrections
    plain_scores = []
    try:
        for stage in range(self.num_stages):
            head = self.bbox_head[stage]
            results = self._bbox_forward(stage, x, rois, **kwargs)
            plain_scores.append(results['cls_score'])
            bbox_pred = results['bbox_pred']
            if stage < self.num_stages - 1:
                if not head.reg_class_agnostic:
                    raise ValueError(
                        f'NPECascadeRoIHead export: bbox_head[{stage}] must '
                        'be class-agnostic (reg_class_agnostic=True, as '
                        'mmdet\'s cascade configs) to refine the RoIs of '
                        'the next stage; got reg_class_agnostic=False')
                refined = _box_tensor(
                    head.bbox_coder.decode(
                        rois[:, 1:].reshape(batch, num_rois, 4),
                        bbox_pred.reshape(batch, num_rois, 4),
                        max_shape=max_shape))
                rois = torch.cat([rois[:, :1], refined.reshape(-1, 4)], dim=-1)
    finally:
        for head in self.bbox_head:
            head.collected_corrections = None
    last = self.bbox_head[-1]
    cls_scores = sum(plain_scores) / float(len(plain_scores))
    if corrections:
        # NPE paper Eq. 11 with the stages' mean estimate, applied once so
        # that p(background) is the stock cascade's (NPECascadeRoIHead).
        cls_scores = last.correct(cls_scores,
                                  sum(corrections) / len(corrections))
    return last.predict_by_feat(
        rois=rois.reshape(batch, num_rois, 5),
        cls_scores=cls_scores.reshape(batch, num_rois, -1),
        bbox_preds=bbox_pred.reshape(batch, num_rois, -1),
        batch_img_metas=batch_img_metas,
        rcnn_test_cfg=rcnn_test_cfg,
        rescale=rescale)

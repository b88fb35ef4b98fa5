from typing import List, Tuple

import torch
import torch.nn as nn
from mmdet.models.detectors import TwoStageDetector
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import InstanceList
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from ..roi_heads.bbox_heads import is_npe_bbox_head


@MODELS.register_module()
class NPETwoStageDetector(TwoStageDetector):
    """A two-stage detector (Faster / Mask / Cascade R-CNN) whose training
    iteration on a frozen detector runs only what its PEMs need.

    The paper's segmentation setting (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Sec. 3.2) carried over: only the
    box head's PEMs train on top of a trained detector that
    :class:`FrozenBackboneHook` froze. Their one-way logistic loss reads the
    features ``fc_cls`` reads on the sampled RoIs, nothing else; the stock
    iteration would still run the RPN loss (anchor assignment and sampling),
    ``fc_cls`` / ``fc_reg`` and their losses, and the whole mask branch
    (targets, forward, loss), all without a gradient. When every trainable
    parameter is a PEM of the box head, :meth:`loss` runs

    - ``loss(): extract_feat() (no grad) -> RPN forward + proposals (no RPN
      loss) -> RoI assigner + sampler -> RoI features and shared FCs of the
      foreground RoIs -> PEMs -> loss_npe``

    and returns ``loss_npe`` alone, the value (and the gradient) the stock
    iteration gives it on the same RoIs. It does so only when the RoI head
    is a plain ``StandardRoIHead`` (``loss``, ``bbox_loss`` and
    ``_bbox_forward`` not overridden, unlike ``DoubleHeadRoIHead``) and no
    module of the RoI head is a BatchNorm or a dropout in training mode:
    those would see a different batch (the foreground RoIs only), update
    their running statistics on it, or skip the updates of the branches
    left out (mask head), and so change the results; a module frozen by
    ``requires_grad=False`` alone, without :class:`FrozenBackboneHook`'s
    eval mode, takes the stock path. Cascade R-CNN skips the RPN loss
    only (its stages' refinements need their classifiers). Otherwise
    (joint training, anything else trainable) it is the stock detector.

    The PEMs' weights after N iterations equal those of the stock
    iteration, to float rounding (the foreground RoIs go through the shared
    FCs as a smaller batch, so sums may round differently), when the RPN's
    sampler draws no random numbers; mmdet's
    ``RandomSampler`` in the RPN does, and skipping its loss leaves them to
    the RoI sampler, which then samples other (equally distributed) RoIs.

    Args:
        **kwargs: Arguments of :class:`TwoStageDetector` (``MaskRCNN``,
            ``FasterRCNN`` and ``CascadeRCNN`` take the same).
    """

    def _npe_heads(self) -> list:
        """The box heads (one per cascade stage) that have PEMs."""
        heads = getattr(getattr(self, 'roi_head', None), 'bbox_head', None)
        if heads is None:
            return []
        if not isinstance(heads, nn.ModuleList):
            heads = [heads]
        return [h for h in heads if is_npe_bbox_head(h) and h.num_pems]

    def trains_pems_only(self) -> bool:
        """Whether the PEMs of the box head(s) are the only trainable
        parameters (a detector frozen by :class:`FrozenBackboneHook`)."""
        heads = self._npe_heads()
        if not heads:
            return False
        pems = {id(p) for head in heads for p in head.pems.parameters()}
        trainable = [p for p in self.parameters() if p.requires_grad]
        return bool(trainable) and all(id(p) in pems for p in trainable)

    def _fast_roi_path(self) -> bool:
        """Whether the foreground-only RoI iteration gives the stock
        iteration's results (class docstring)."""
        roi_head = self.roi_head
        cls = type(roi_head)
        if not isinstance(roi_head, StandardRoIHead) or any(
                getattr(cls, name) is not getattr(StandardRoIHead, name)
                for name in ('loss', 'bbox_loss', '_bbox_forward')):
            return False
        return not any(
            module.training and isinstance(module, (_BatchNorm, _DropoutNd))
            for module in roi_head.modules())

    def _proposals(self, x: Tuple[Tensor],
                   batch_data_samples: SampleList) -> InstanceList:
        """The RPN's training proposals, as ``loss_and_predict`` gives them,
        without its loss."""
        if not self.with_rpn:
            return [sample.proposals for sample in batch_data_samples]
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        metas = [sample.metainfo for sample in batch_data_samples]
        return self.rpn_head.predict_by_feat(
            *self.rpn_head(x), batch_img_metas=metas, cfg=proposal_cfg)

    def _pem_roi_loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                      batch_data_samples: SampleList) -> dict:
        """The RoI sampling of ``StandardRoIHead.loss``, then the PEM loss
        of the sampled foreground RoIs' classifier features."""
        roi_head = self.roi_head
        head = roi_head.bbox_head
        gts, gts_ignore, _ = unpack_gt_instances(batch_data_samples)
        sampling_results: List = []
        for i, results in enumerate(rpn_results_list):
            results.priors = results.pop('bboxes')
            assigned = roi_head.bbox_assigner.assign(results, gts[i],
                                                     gts_ignore[i])
            sampling_results.append(
                roi_head.bbox_sampler.sample(
                    assigned,
                    results,
                    gts[i],
                    feats=[level[i][None] for level in x]))
        labels, label_weights, _, _ = head.get_targets(
            sampling_results, roi_head.train_cfg, concat=True)
        # Background RoIs (about three in four) give the PEMs no loss and no
        # gradient: their features are not needed at all.
        fg = labels < head.num_classes
        with torch.no_grad():
            rois = bbox2roi([res.priors for res in sampling_results])[fg]
            if len(rois):
                extractor = roi_head.bbox_roi_extractor
                feats = extractor(x[:extractor.num_inputs], rois)
                if roi_head.with_shared_head:
                    feats = roi_head.shared_head(feats)
                feats = head.classifier_features(feats)
            else:
                feats = rois.new_zeros(0, head.fc_cls.in_features)
        return head.pem_only_loss(feats, labels[fg], label_weights[fg])

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """The PEM-only iteration when only PEMs train (class docstring),
        else the stock losses."""
        if not self.trains_pems_only():
            return super().loss(batch_inputs, batch_data_samples)
        # Nothing before the PEMs trains: no autograd graph through it.
        with torch.no_grad():
            x = self.extract_feat(batch_inputs)
            rpn_results_list = self._proposals(x, batch_data_samples)
        if self._fast_roi_path():
            return self._pem_roi_loss(x, rpn_results_list, batch_data_samples)
        # A cascade (or an RoI head with a loss of its own, or one whose
        # BatchNorm / dropout trains): its stages' refinements need their
        # classifiers, so only the RPN loss goes.
        return self.roi_head.loss(x, rpn_results_list, batch_data_samples)

from typing import Dict, List, Sequence, Tuple

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from torch import Tensor

from .bbox_heads import is_npe_bbox_head


@MODELS.register_module()
class NPECascadeRoIHead(CascadeRoIHead):
    """Cascade R-CNN with NPE box heads, p(background) exactly the stock
    cascade's.

    mmdet's Cascade R-CNN averages the stages' classifier logits and scores
    the average with the last stage's activation. Here every stage gives its
    plain logits and its NPE correction ``alpha * eta_s`` (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Eq. 11) separately; the average
    logits get the average correction once, through the last stage's
    :meth:`NPEBBoxHeadMixin.correct` (foreground classes only, ``p_bg``
    kept). The stages' own refinements use their plain scores, as the stock
    cascade does. Training is the stock cascade's (each stage's PEMs learn
    from that stage's foreground RoIs). A stock ``CascadeRoIHead``
    checkpoint loads (only the PEMs are missing).

    The mean correction is ``sum_s alpha_s * eta_s / S`` over all ``S``
    stages, as the logits are averaged over all of them: a stage without
    PEMs (``num_pems=0``) or at ``scale_factor=0`` contributes zero.

    **The PEM loss is exempt from** ``stage_loss_weights``. mmdet multiplies
    every loss of stage ``s`` by its weight (1, 0.5, 0.25 in the stock
    configs), which down-weights the later stages' detection losses. The
    PEM loss is not a detection loss: with weight decay its scale sets the
    scale of the estimate (the OWL optimum depends on the ratio of the two),
    so a PEM trained at weight 0.25 would learn another estimate than one
    at weight 1, and the stages' estimates, which are averaged, would not be
    alike. ``s{i}.loss_npe`` is therefore the stage head's ``pem_loss_weight
    * sum_k mean_fg OWL``, unscaled; set a stage's ``pem_loss_weight`` to
    scale it on purpose.

    - ``loss(): the stock cascade's losses, s{i}.loss_npe not multiplied by
      stage_loss_weights[i]``
    - ``predict(): stages -> mean plain logits, mean correction ->
      correct() -> last stage's softmax -> NMS``

    Args:
        **kwargs: Arguments of :class:`CascadeRoIHead`; every ``bbox_head``
            must be an NPE box head (``num_pems=0`` for a stage without
            PEMs).
    """

    def init_bbox_head(self, bbox_roi_extractor, bbox_head) -> None:
        super().init_bbox_head(bbox_roi_extractor, bbox_head)
        plain = [
            f'bbox_head[{i}] ({type(head).__name__})'
            for i, head in enumerate(self.bbox_head)
            if not is_npe_bbox_head(head)
        ]
        if plain:
            raise TypeError(
                'NPECascadeRoIHead averages NPE corrections over the stages '
                'and applies them with the last stage\'s classifier rule, so '
                'every stage needs an NPE box head (NPEShared2FCBBoxHead '
                f'..., num_pems=0 for a stage without PEMs); got {plain}')
        # Set by loss() while the stages run (see bbox_loss).
        self._pem_losses = None
        kinds = {head.classifier_kind for head in self.bbox_head}
        if len(kinds) > 1:
            raise TypeError('NPECascadeRoIHead: the stages\' classifiers must '
                            f'be of one kind to be averaged, got {kinds}')
        balanced = [
            i for i, head in enumerate(self.bbox_head)
            if type(head.loss_cls).__name__ == 'BalancedSoftmaxRoILoss'
        ]
        with_pems = [
            i for i, head in enumerate(self.bbox_head) if head.num_pems
        ]
        if balanced and with_pems:
            raise TypeError(
                'NPECascadeRoIHead: stages ' + str(balanced) + ' train with '
                'BalancedSoftmaxRoILoss, whose test-time logits are already '
                'prior-free, and stages ' + str(with_pems) + ' carry PEMs; '
                'the mean correction would remove the prior a second time '
                'from the averaged logits. Use Balanced Softmax in no stage '
                'or PEMs in none (num_pems=0)')

    def _refine_roi(self, x: Tuple[Tensor], rois: Tensor,
                    batch_img_metas: List[dict],
                    num_proposals_per_img: Sequence[int], **kwargs) -> tuple:
        """The stock refinement and stage average, then the mean
        correction applied once to the mean logits."""
        corrections: List[Tensor] = []
        for head in self.bbox_head:
            head.collected_corrections = corrections
        try:
            rois, cls_scores, bbox_preds = super()._refine_roi(
                x, rois, batch_img_metas, num_proposals_per_img, **kwargs)
        finally:
            for head in self.bbox_head:
                head.collected_corrections = None
        if corrections:
            # The mean over every stage whose logits are averaged: a stage
            # without PEMs (num_pems=0) or at alpha = 0 contributes a zero
            # correction, so the result is continuous in each stage's alpha.
            mean = (sum(corrections) / self.num_stages).split(
                tuple(num_proposals_per_img), 0)
            last = self.bbox_head[-1]
            cls_scores = [
                last.correct(score, correction)
                for score, correction in zip(cls_scores, mean)
            ]
        return rois, cls_scores, bbox_preds

    def bbox_loss(self, stage: int, x: Tuple[Tensor],
                  sampling_results: list) -> dict:
        """The stock stage loss, the PEM loss set aside so that
        :meth:`loss` adds it without the stage's loss weight."""
        bbox_results = super().bbox_loss(stage, x, sampling_results)
        stage_losses = bbox_results['loss_bbox']
        if self._pem_losses is not None and 'loss_npe' in stage_losses:
            self._pem_losses[f's{stage}.loss_npe'] = stage_losses.pop(
                'loss_npe')
        return bbox_results

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """The stock cascade's losses plus the stages' ``s{i}.loss_npe``,
        exempt from ``stage_loss_weights`` (class docstring)."""
        self._pem_losses = {}
        try:
            losses = super().loss(x, rpn_results_list, batch_data_samples)
            losses.update(self._pem_losses)
        finally:
            self._pem_losses = None
        return losses

from typing import List, Sequence, Tuple

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.registry import MODELS
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
        kinds = {head.classifier_kind for head in self.bbox_head}
        if len(kinds) > 1:
            raise TypeError('NPECascadeRoIHead: the stages\' classifiers must '
                            f'be of one kind to be averaged, got {kinds}')

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
            mean = (sum(corrections) / len(corrections)).split(
                tuple(num_proposals_per_img), 0)
            last = self.bbox_head[-1]
            cls_scores = [
                last.correct(score, correction)
                for score, correction in zip(cls_scores, mean)
            ]
        return rois, cls_scores, bbox_preds

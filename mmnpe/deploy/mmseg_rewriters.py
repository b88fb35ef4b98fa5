"""MMDeploy rewriters for mmnpe's segmentors.

MMDeploy exports a segmentor through its rewrite of
``mmseg.models.segmentors.EncoderDecoder.predict`` (and of
``CascadeEncoderDecoder.predict``): ``extract_feat`` + the decode head's
``predict``, whole-image inference, no ``postprocess_result``. Every mmnpe
segmentor inherits ``predict`` from those classes, so without the rewriter
below the exported graph is the stock model's: the PEMs, post-hoc logit
adjustment and ``target_prior`` vanish without a warning.

The rewriter below is registered on
:class:`~mmnpe.seg.segmentors.PriorAdjustedEncoderDecoder`, the base of the
NPE-LA and post-hoc LA segmentors (plain and cascade), which comes before
mmseg's classes in their method resolution order. It exports what
``encode_decode`` computes in PyTorch: the decode path, ``- scale_factor *
eta``, the target prior's centred log, and the decode head's
``predict_by_feat`` (resize to the input), i.e. the logits of mmnpe's whole
inference, bit for bit the same operations. MMDeploy's ``forward`` rewrite
takes the argmax (or keeps the logits with ``with_argmax=False``) after it.
"""
from typing import List

from mmdeploy.core import FUNCTION_REWRITER
from mmseg.utils import SampleList
from torch import Tensor

PRIOR_ADJUSTED_PREDICT = ('mmnpe.seg.segmentors.prior_adjusted_encoder_decoder'
                          '.PriorAdjustedEncoderDecoder.predict')


def check_whole_inference(model) -> None:
    """Refuse a segmentor whose test-time inference MMDeploy cannot export.

    MMDeploy exports whole-image inference only; a model tested with
    ``test_cfg.mode='slide'`` would be deployed as another model (the
    correction itself is exact in both modes, the crops are not).

    Raises:
        ValueError: ``test_cfg.mode`` is not ``'whole'``.
    """
    test_cfg = model.test_cfg or {}
    mode = test_cfg.get('mode', 'whole')
    if mode != 'whole':
        raise ValueError(
            f'{type(model).__name__}: MMDeploy exports whole-image inference '
            f"only, but model.test_cfg.mode is {mode!r}; export with "
            "--cfg-options model.test_cfg.mode=whole (and test the model that "
            'way), or export one crop with tools/deploy/export_onnx.py and '
            'tile it in the application (docs/user_guides/deployment.md)')


@FUNCTION_REWRITER.register_rewriter(func_name=PRIOR_ADJUSTED_PREDICT)
def prior_adjusted_encoder_decoder__predict(self, inputs: Tensor,
                                            data_samples: SampleList,
                                            **kwargs) -> Tensor:
    """Corrected logits resized to the input, (N, C, H, W): whole-image
    ``encode_decode`` (mmdeploy's ``EncoderDecoder.predict`` rewrite would
    call the decode head alone).

    Args:
        inputs (Tensor): Images, (N, 3, H, W).
        data_samples (list[SegDataSample]): Their meta information
            (``img_shape``, as mmdeploy's ``forward`` rewrite sets it).

    Returns:
        Tensor: (N, C, H, W).
    """
    check_whole_inference(self)
    batch_img_metas: List[dict] = [s.metainfo for s in data_samples]
    return self.encode_decode(inputs, batch_img_metas)

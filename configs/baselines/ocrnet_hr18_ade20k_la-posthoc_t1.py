# Post-hoc logit adjustment on ADE20K with the stock OCRNet HRNetV2p-W18
# (a cascade: FCN stage, then OCR stage): the last stage's logits become
# z - tau * log pi (tau = 1) at inference, pi = the pixels per class of the
# training annotations (reduce_zero_label honoured); no training.
# LogitAdjustCascadeEncoderDecoder is LogitAdjustEncoderDecoder on mmseg's
# CascadeEncoderDecoder.
#
#   python tools/analysis/class_counts.py THIS_CONFIG \
#       --out data/ade/ADEChallengeData2016/pixel_counts.json      # once
#   python tools/test.py THIS_CONFIG STOCK_CHECKPOINT \
#       [--cfg-options model.tau=0.1]
_base_ = 'mmseg::ocrnet/ocrnet_hr18_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config (mmseg's ocrnet/metafile.yaml),
# which tools/test.py takes as CKPT.
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/ocrnet/ocrnet_hr18_512x512_80k_ade20k/ocrnet_hr18_512x512_80k_ade20k_20200615_053157-d173d83b.pth'  # noqa

model = dict(
    type='LogitAdjustCascadeEncoderDecoder',
    # The checkpoint provides every weight: no ImageNet init download.
    pretrained=None,
    class_counts='data/ade/ADEChallengeData2016/pixel_counts.json',
    tau=1.0)
# Checks the counts' class names against the data set's.
custom_hooks = [dict(type='ClassCountsHook')]

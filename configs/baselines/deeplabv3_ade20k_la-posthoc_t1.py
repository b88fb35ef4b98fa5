# Post-hoc logit adjustment on ADE20K with the stock DeepLabV3 R50-D8: the
# logits become z - tau * log pi (tau = 1) at inference, pi = the pixels per
# class of the training annotations (reduce_zero_label honoured); no
# training. NPE-LA's correction path with a fixed prior.
#
#   python tools/analysis/class_counts.py THIS_CONFIG \
#       --out data/ade/ADEChallengeData2016/pixel_counts.json      # once
#   python tools/test.py THIS_CONFIG STOCK_CHECKPOINT \
#       [--cfg-options model.tau=0.1]
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config (tools/test.py takes it as CKPT).
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r50-d8_512x512_80k_ade20k/deeplabv3_r50-d8_512x512_80k_ade20k_20200614_185028-0bb3f844.pth'  # noqa

model = dict(
    type='LogitAdjustEncoderDecoder',
    # The checkpoint provides every weight: no ImageNet init download.
    pretrained=None,
    class_counts='data/ade/ADEChallengeData2016/pixel_counts.json',
    tau=1.0)
# Checks the counts' class names against the data set's.
custom_hooks = [dict(type='ClassCountsHook')]

# Post-hoc logit adjustment on STARE with the stock UNet-S5-D16 + FCN: the
# logits become z - tau * log pi (tau = 1) at inference, pi = the pixels per
# class of the training annotations; no training. The same correction path as
# NPE-LA (configs/npe/unet_stare_pem_fcn.py) with a fixed prior.
#
#   python tools/analysis/class_counts.py THIS_CONFIG \
#       --out data/stare/pixel_counts.json      # once
#   python tools/test.py THIS_CONFIG STOCK_CHECKPOINT \
#       [--cfg-options model.tau=0.5]
_base_ = 'mmseg::unet/unet-s5-d16_fcn_4xb4-40k_stare-128x128.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config (tools/test.py takes it as CKPT).
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/unet/fcn_unet_s5-d16_128x128_40k_stare/fcn_unet_s5-d16_128x128_40k_stare_20201223_191051-7d77e78b.pth'  # noqa

model = dict(
    type='LogitAdjustEncoderDecoder',
    class_counts='data/stare/pixel_counts.json',
    tau=1.0)
# Checks the counts' class names against the data set's.
custom_hooks = [dict(type='ClassCountsHook')]

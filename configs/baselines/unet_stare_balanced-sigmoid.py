# Balanced Sigmoid on STARE: UNet-S5-D16 + FCN with one-channel (sigmoid)
# decode and auxiliary heads, trained from scratch on the stock schedule
# (40k iterations) with BCE on z + log(n_vessel / n_background) (Balanced
# Sigmoid with k = 2; n = pixels per class of the training annotations).
# Balanced training makes 0.5 the natural threshold of the plain sigmoid.
#
#   python tools/analysis/class_counts.py THIS_CONFIG \
#       --out data/stare/pixel_counts.json      # once
#   python tools/train.py THIS_CONFIG
_base_ = 'mmseg::unet/unet-s5-d16_fcn_4xb4-40k_stare-128x128.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

counts = 'data/stare/pixel_counts.json'
model = dict(
    decode_head=dict(
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(
            _delete_=True, type='BalancedSigmoidLoss', class_counts=counts)),
    auxiliary_head=dict(
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(
            _delete_=True,
            type='BalancedSigmoidLoss',
            class_counts=counts,
            loss_weight=0.4)))
# Checks the counts' class names against the data set's and that every
# Balanced Sigmoid loss sits on a one-channel head.
custom_hooks = [dict(type='ClassCountsHook')]

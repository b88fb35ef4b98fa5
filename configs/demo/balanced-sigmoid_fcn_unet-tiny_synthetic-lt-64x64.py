# Balanced Sigmoid on a binary version of the synthetic set: the rarest class
# (glacier) against the background, the other classes ignored (mmseg's
# label_map sends classes left out of metainfo to 255). One-channel heads,
# BCE on z + log(n_glacier / n_background) (k = 2), threshold 0.5.
#
#   python tools/analysis/class_counts.py THIS_CONFIG \
#       --out data/synthetic_lt/pixel_counts_glacier.json
_base_ = './fcn_unet-tiny_synthetic-lt-64x64.py'

counts = 'data/synthetic_lt/pixel_counts_glacier.json'
binary = dict(classes=('background', 'glacier'))
model = dict(
    decode_head=dict(
        num_classes=2,
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(
            _delete_=True, type='BalancedSigmoidLoss', class_counts=counts)),
    auxiliary_head=dict(
        num_classes=2,
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(
            _delete_=True,
            type='BalancedSigmoidLoss',
            class_counts=counts,
            loss_weight=0.4)))
train_dataloader = dict(dataset=dict(metainfo=binary))
val_dataloader = dict(dataset=dict(metainfo=binary))
test_dataloader = dict(dataset=dict(metainfo=binary))
custom_hooks = [dict(type='ClassCountsHook')]

# As fcn_unet-tiny_synthetic-lt-64x64.py trained with the logit-adjusted loss
# CE(z + tau * log pi, y), tau = 1, in both heads; pi = pixels per class of
# the training annotations. Plain logits at test.
_base_ = './fcn_unet-tiny_synthetic-lt-64x64.py'

counts = 'data/synthetic_lt/pixel_counts.json'
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type='LogitAdjustLoss', class_counts=counts)),
    auxiliary_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='LogitAdjustLoss',
            class_counts=counts,
            loss_weight=0.4)))
custom_hooks = [dict(type='ClassCountsHook')]

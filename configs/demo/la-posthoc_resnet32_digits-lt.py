# Post-hoc logit adjustment of the CE demo model: z - tau * log pi, tau = 1,
# no training (tools/test.py THIS_CONFIG CE_CHECKPOINT; tools/demo.py does
# so). pi = the training images per class, counted by ClassCountsHook.
_base_ = './ce_resnet32_digits-lt.py'
model = dict(head=dict(type='LogitAdjustClsHead', tau=1.0))

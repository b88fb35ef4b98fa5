# Post-hoc logit adjustment z - tau * log pi (tau = 1) of the CE model, no
# training: python tools/test.py THIS_CONFIG CE_CHECKPOINT, with the last
# checkpoint of the CE config this file inherits. pi = the training set's
# images per class, counted by ClassCountsHook when the test starts.
_base_ = './ce_resnet50_200e_inat2018.py'
model = dict(head=dict(type='LogitAdjustClsHead', tau=1.0))

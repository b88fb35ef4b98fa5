# As ce_resnet32_digits-lt.py with NPE-LA: 1 linear PEM on the pooled
# feature, OWL loss next to CE, prediction logits - eta.
_base_ = './ce_resnet32_digits-lt.py'
model = dict(
    head=dict(type='NPEClsHead', num_pems=1, sign=-1, scale_factor=1.0))

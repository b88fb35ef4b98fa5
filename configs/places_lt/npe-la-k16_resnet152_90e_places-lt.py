# NPE-LA with 16 PEMs: linear PEMs on the pooled 2048-d feature, trained with
# the one-way logistic loss next to CE (their gradient reaches the backbone);
# prediction logits - scale_factor * eta. Otherwise as the CE config.
_base_ = './ce_resnet152_90e_places-lt.py'
model = dict(
    head=dict(
        type='NPEClsHead',
        num_pems=16,
        sign=-1,
        scale_factor=1.0,
        pem_loss_weight=1.0))

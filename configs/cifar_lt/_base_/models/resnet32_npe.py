# ResNet-32 with NPE-LA: K linear PEMs on the pooled 64-d feature, trained
# with the one-way logistic loss next to CE; their gradient reaches the
# backbone. Prediction: logits - scale_factor * eta.
_base_ = './resnet32_ce.py'
model = dict(
    head=dict(
        type='NPEClsHead',
        num_pems=1,
        sign=-1,
        scale_factor=1.0,
        pem_loss_weight=1.0))

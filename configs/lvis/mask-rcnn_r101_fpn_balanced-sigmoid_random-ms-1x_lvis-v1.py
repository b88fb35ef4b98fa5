# Balanced Sigmoid with ResNet-101 (the slides' R101 row: mask AP 26.4 /
# AP_r 20.1); everything else as the R50 config.
_base_ = './mask-rcnn_r50_fpn_balanced-sigmoid_random-ms-1x_lvis-v1.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))

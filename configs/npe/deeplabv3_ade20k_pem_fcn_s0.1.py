# NPE-LA at alpha = 0.1 (ADE20K, DeepLabV3 R50-D8, a linear PEM: the NPE
# paper's Table 7 row at alpha 0.1). Trains the PEM on the frozen stock model
# exactly as deeplabv3_ade20k_pem_fcn.py does, and validates and tests it at
# alpha = 0.1:
#   python tools/train.py configs/npe/deeplabv3_ade20k_pem_fcn_s0.1.py
#   python tools/test.py configs/npe/deeplabv3_ade20k_pem_fcn_s0.1.py \
#       work_dirs/deeplabv3_ade20k_pem_fcn_s0.1/iter_2500.pth
# One PEM serves every alpha: scale_factor only scales the estimate at
# inference, so this training is that of deeplabv3_ade20k_pem_fcn.py (alpha =
# 1), and either checkpoint tests at any other alpha without retraining:
#   python tools/test.py configs/npe/deeplabv3_ade20k_pem_fcn_s0.1.py CKPT \
#       --cfg-options model.scale_factor=1.0
_base_ = './deeplabv3_ade20k_pem_fcn.py'
model = dict(scale_factor=0.1)

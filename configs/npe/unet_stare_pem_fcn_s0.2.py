# NPE-LA at alpha = 0.2 (STARE, UNet-S5-D16 + FCN, a linear PEM: the NPE
# paper's Table 6 row at alpha 0.2). Trains the PEM on the frozen stock model
# exactly as unet_stare_pem_fcn.py does, and validates and tests it at alpha =
# 0.2:
#   python tools/train.py configs/npe/unet_stare_pem_fcn_s0.2.py
#   python tools/test.py configs/npe/unet_stare_pem_fcn_s0.2.py \
#       work_dirs/unet_stare_pem_fcn_s0.2/iter_600.pth
# One PEM serves every alpha: scale_factor only scales the estimate at
# inference, so this training is that of unet_stare_pem_fcn.py (alpha = 1), and
# either checkpoint tests at any other alpha without retraining:
#   python tools/test.py configs/npe/unet_stare_pem_fcn_s0.2.py CKPT \
#       --cfg-options model.scale_factor=1.0
_base_ = './unet_stare_pem_fcn.py'
model = dict(scale_factor=0.2)

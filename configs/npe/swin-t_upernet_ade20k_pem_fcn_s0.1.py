# NPE-LA at alpha = 0.1 (ADE20K, Swin-T + UPerNet, a linear PEM: the NPE
# paper's Table 7 row at alpha 0.1). Trains the PEM on the frozen stock model
# exactly as swin-t_upernet_ade20k_pem_fcn.py does, and validates and tests it
# at alpha = 0.1:
#   python tools/train.py configs/npe/swin-t_upernet_ade20k_pem_fcn_s0.1.py
#   python tools/test.py configs/npe/swin-t_upernet_ade20k_pem_fcn_s0.1.py \
#       work_dirs/swin-t_upernet_ade20k_pem_fcn_s0.1/iter_2500.pth
# One PEM serves every alpha: scale_factor only scales the estimate at
# inference, so this training is that of swin-t_upernet_ade20k_pem_fcn.py
# (alpha = 1), and either checkpoint tests at any other alpha without
# retraining:
#   python tools/test.py \
#       configs/npe/swin-t_upernet_ade20k_pem_fcn_s0.1.py CKPT \
#       --cfg-options model.scale_factor=1.0
_base_ = './swin-t_upernet_ade20k_pem_fcn.py'
model = dict(scale_factor=0.1)

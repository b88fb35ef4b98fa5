# No training of its own: tests the checkpoint of
# deeplabv3_ade20k_pem_fcn.py at alpha=0.1 (the NPE paper's Table 7).
# scale_factor only scales the estimate at inference, so the one PEM that
# deeplabv3_ade20k_pem_fcn.py trains serves every alpha:
#   python tools/test.py \
#       configs/npe/deeplabv3_ade20k_pem_fcn_test-alpha0.1.py \
#       work_dirs/deeplabv3_ade20k_pem_fcn/iter_2500.pth
_base_ = './deeplabv3_ade20k_pem_fcn.py'
model = dict(scale_factor=0.1)

# No training of its own: tests the checkpoint of unet_stare_pem_fcn.py at
# alpha=0.2, the weaker correction of the NPE paper's STARE table (Table 6).
# scale_factor only scales the estimate at inference, so the one PEM that
# unet_stare_pem_fcn.py trains serves every alpha:
#   python tools/test.py configs/npe/unet_stare_pem_fcn_test-alpha0.2.py \
#       work_dirs/unet_stare_pem_fcn/iter_600.pth
_base_ = './unet_stare_pem_fcn.py'
model = dict(scale_factor=0.2)

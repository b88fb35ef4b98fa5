# No training of its own: tests the checkpoint of
# swin-t_upernet_ade20k_pem_uper.py at alpha=0.1 (the NPE paper's Table 7).
# scale_factor only scales the estimate at inference, so the one PEM that
# swin-t_upernet_ade20k_pem_uper.py trains serves every alpha:
#   python tools/test.py \
#       configs/npe/swin-t_upernet_ade20k_pem_uper_test-alpha0.1.py \
#       work_dirs/swin-t_upernet_ade20k_pem_uper/iter_2500.pth
_base_ = './swin-t_upernet_ade20k_pem_uper.py'
model = dict(scale_factor=0.1)

# As deeplabv3_ade20k_pem_aspp_s1.py with alpha = 0.1 (Table 7).
_base_ = './deeplabv3_ade20k_pem_aspp_s1.py'
model = dict(scale_factor=0.1)

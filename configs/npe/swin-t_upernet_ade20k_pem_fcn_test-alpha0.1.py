# As swin-t_upernet_ade20k_pem_fcn_s1.py with alpha = 0.1 (Table 7).
_base_ = './swin-t_upernet_ade20k_pem_fcn_s1.py'
model = dict(scale_factor=0.1)

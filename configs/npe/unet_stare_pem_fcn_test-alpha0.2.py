# As unet_stare_pem_fcn_s1.py with the weaker correction alpha = 0.2 (Table 6).
_base_ = './unet_stare_pem_fcn_s1.py'
model = dict(scale_factor=0.2)

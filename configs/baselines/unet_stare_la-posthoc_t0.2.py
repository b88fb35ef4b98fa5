# As unet_stare_la-posthoc_t1.py with tau = 0.2, the weaker correction the NPE
# paper's STARE table uses for NPE-LA
# (configs/npe/unet_stare_pem_fcn_s0.2.py).
_base_ = './unet_stare_la-posthoc_t1.py'
model = dict(tau=0.2)

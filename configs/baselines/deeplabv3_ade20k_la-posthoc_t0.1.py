# As deeplabv3_ade20k_la-posthoc_t1.py with tau = 0.1, the weaker correction
# the NPE paper's ADE20K tables use for NPE-LA.
_base_ = './deeplabv3_ade20k_la-posthoc_t1.py'
model = dict(tau=0.1)

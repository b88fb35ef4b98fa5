# cRT stage 2 on the CE run of HP-1: as crt_hp2.py, with Kang et al.'s lr
# 0.2 at batch 512 scaled linearly to HP-1's batch of 128 -> 0.05.
_base_ = './crt_hp2.py'
optim_wrapper = dict(optimizer=dict(lr=0.05))
auto_scale_lr = dict(base_batch_size=128)

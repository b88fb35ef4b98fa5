# Post-hoc logit adjustment of the demo's CE segmentor: z - tau * log pi
# (tau = 1) at inference, pi = pixels per class of the training annotations,
# no training (tools/test.py THIS_CONFIG BASELINE_CHECKPOINT; tools/demo.py
# writes the counts with the counting tool's code and runs it).
_base_ = './fcn_unet-tiny_synthetic-lt-64x64.py'

load_from = 'work_dirs/demo/baseline/iter_400.pth'
model = dict(
    type='LogitAdjustEncoderDecoder',
    class_counts='data/synthetic_lt/pixel_counts.json',
    tau=1.0)
custom_hooks = [dict(type='ClassCountsHook')]

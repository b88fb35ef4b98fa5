# As swin-t_upernet_ade20k_pem_uper.py with a linear PEM: one 1x1 conv on the
# deepest Swin-T stage, which the UPerNet head's PPM reads (Table 7), tested
# at alpha = 1; swin-t_upernet_ade20k_pem_fcn_s0.1.py trains the same PEM and
# tests it at 0.1.
_base_ = './swin-t_upernet_ade20k_pem_uper.py'
model = dict(
    pem_head=dict(
        _delete_=True,
        type='PEMFCNHead',
        in_channels=768,
        in_index=3,
        num_classes=150))

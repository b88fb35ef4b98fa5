# As swin-t_upernet_ade20k_pem_uper.py with a linear PEM: one 1x1 conv on the
# deepest Swin-T stage, which the UPerNet head's PPM reads (Table 7). The one
# training of its rows; swin-t_upernet_ade20k_pem_fcn_test-alpha0.1.py tests
# it at alpha = 0.1.
_base_ = './swin-t_upernet_ade20k_pem_uper.py'
model = dict(
    pem_head=dict(
        _delete_=True,
        type='PEMFCNHead',
        in_channels=768,
        in_index=3,
        num_classes=150))

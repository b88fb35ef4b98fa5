# As deeplabv3_ade20k_pem_aspp.py with a linear PEM: one 1x1 conv on the
# backbone feature the ASPP head reads (Table 7), tested at alpha = 1;
# deeplabv3_ade20k_pem_fcn_s0.1.py trains the same PEM and tests it at 0.1.
_base_ = './deeplabv3_ade20k_pem_aspp.py'
model = dict(
    pem_head=dict(
        _delete_=True,
        type='PEMFCNHead',
        in_channels=2048,
        in_index=3,
        num_classes=150))

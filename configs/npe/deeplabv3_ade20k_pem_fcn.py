# As deeplabv3_ade20k_pem_aspp.py with a linear PEM: one 1x1 conv on the
# backbone feature the ASPP head reads (Table 7). The one training of its
# rows; deeplabv3_ade20k_pem_fcn_test-alpha0.1.py tests it at alpha = 0.1.
_base_ = './deeplabv3_ade20k_pem_aspp.py'
model = dict(
    pem_head=dict(
        _delete_=True,
        type='PEMFCNHead',
        in_channels=2048,
        in_index=3,
        num_classes=150))

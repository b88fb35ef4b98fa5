# As npe-la-k1_resnet32_digits-lt.py with 16 PEMs.
_base_ = './npe-la-k1_resnet32_digits-lt.py'
model = dict(head=dict(num_pems=16))

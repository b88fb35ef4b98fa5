# Option-A ResNet-32 (3 stages x 5 basic blocks, 16/32/64 channels, ~0.46 M
# parameters) with a plain linear classifier trained with CE.
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', depth=32),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

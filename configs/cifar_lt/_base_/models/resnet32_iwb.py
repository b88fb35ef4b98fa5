# ResNet-32 with IWB's stage-2 head: the linear classifier trained with
# class-balanced CE (effective numbers, beta 0.9999: the paper's IWB+CB) plus
# KL(softmax|W| || softmax(lambda * NC * HC)) (the paper's Eq. 8 direction),
# lambda 0.15 (the paper's CIFAR-100-LT value, also used for CIFAR-10-LT,
# for which the paper gives none). Counts from the training set
# (ClassCountsHook). Prediction: the plain classifier.
_base_ = './resnet32_ce.py'
model = dict(
    head=dict(
        type='IWBClsHead',
        class_counts=None,
        iwb_lambda=0.15,
        kl_direction='forward',
        loss=dict(_delete_=True, type='ClassBalancedLoss', beta=0.9999)))

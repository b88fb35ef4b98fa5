# Repeat-factor sampling (mmdet's ClassBalancedDataset, as its LVIS configs
# use with oversample_thr=1e-3): an image is repeated ceil(max over its
# categories of max(1, sqrt(t / f_c))) times, f_c the fraction of training
# images holding category c. The threshold is scaled to this 200-image set
# (1e-3 of LVIS's 100k images would repeat nothing here): t = 0.1 repeats
# the images of the rare (r) categories 3-4 times.
_base_ = './faster-rcnn_r18-tiny_fpn_synthetic-lvis.py'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassBalancedDataset',
        oversample_thr=0.1,
        dataset={{_base_.train_dataloader.dataset}}))

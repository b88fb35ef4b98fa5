"""Builders shared by the tests: a tiny segmentor config, random batches,
the flags tools/test.py parses."""
import argparse
import copy
import importlib.util
import os.path as osp

import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import mmnpe  # noqa: F401  (registers everything)

NUM_CLASSES = 4


def tiny_segmentor_cfg(num_classes: int = NUM_CLASSES, **kwargs) -> ConfigDict:
    """A UNet + FCN segmentor small enough for CPU unit tests (BN inside)."""
    norm_cfg = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='NPEEncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[0., 0., 0.],
            std=[1., 1., 1.],
            pad_val=0,
            seg_pad_val=255,
            size_divisor=8),
        backbone=dict(
            type='UNet',
            in_channels=3,
            base_channels=8,
            num_stages=3,
            strides=(1, 1, 1),
            enc_num_convs=(1, 1, 1),
            dec_num_convs=(1, 1),
            downsamples=(True, True),
            enc_dilations=(1, 1, 1),
            dec_dilations=(1, 1),
            norm_cfg=norm_cfg),
        decode_head=dict(
            type='FCNHead',
            in_channels=8,
            in_index=2,
            channels=8,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.,
            num_classes=num_classes,
            norm_cfg=norm_cfg),
        auxiliary_head=dict(
            type='FCNHead',
            in_channels=16,
            in_index=1,
            channels=8,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        pem_head=dict(
            type='PEMFCNHead',
            in_channels=8,
            in_index=2,
            num_classes=num_classes),
        scale_factor=1.0,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    cfg.update(copy.deepcopy(kwargs))
    # As Config.fromfile gives it: attribute access (test_cfg.mode ...).
    return ConfigDict(cfg)


def random_seg_batch(batch_size: int = 2,
                     size: int = 32,
                     num_classes: int = NUM_CLASSES,
                     seed: int = 0) -> dict:
    """A data batch as the dataloader gives it (uint8 images, labels)."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(
            torch.randint(
                0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        sample = SegDataSample(
            gt_sem_seg=PixelData(data=label),
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                padding_size=[0, 0, 0, 0]))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def tiny_runner_cfg(work_dir: str,
                    data_root: str,
                    max_iters: int = 3,
                    **model_kwargs) -> dict:
    """A full Runner config training the tiny segmentor on the synthetic
    data set in ``data_root`` (see ``generate_synthetic_lt``)."""
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]

    def loader(split, shuffle):
        return dict(
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=shuffle),
            dataset=dict(
                type='SyntheticLTDataset',
                data_root=data_root,
                data_prefix=dict(
                    img_path=f'img_dir/{split}',
                    seg_map_path=f'ann_dir/{split}'),
                pipeline=pipeline))

    return dict(
        default_scope='mmseg',
        work_dir=work_dir,
        model=tiny_segmentor_cfg(num_classes=6, **model_kwargs).to_dict(),
        train_dataloader=loader('train', True),
        val_dataloader=loader('val', False),
        val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        val_cfg=dict(type='ValLoop'),
        test_dataloader=loader('val', False),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        test_cfg=dict(type='TestLoop'),
        visualizer=dict(
            type='SegLocalVisualizer',
            vis_backends=[dict(type='LocalVisBackend')],
            name='visualizer'),
        train_cfg=dict(
            type='IterBasedTrainLoop',
            max_iters=max_iters,
            val_interval=max_iters + 1),
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(
                type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)),
        param_scheduler=[
            dict(
                type='MultiStepLR', by_epoch=False, milestones=[2], gamma=0.1)
        ],
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
            visualization=dict(type='SegVisualizationHook', interval=1)),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0),
        log_level='WARNING')


def write_fake_cifar(root: str,
                     num_classes: int = 10,
                     train_per_class: int = 30,
                     test_per_class: int = 3,
                     seed: int = 0) -> str:
    """Tiny CIFAR python-pickle folder in the real on-disk format.

    ``num_classes=10`` writes ``cifar-10-batches-py`` (5 train batches,
    ``labels``); 100 writes ``cifar-100-python`` (``fine_labels``).
    Returns the data_root to pass to the data set.
    """
    import os
    import pickle

    import numpy as np
    rng = np.random.RandomState(seed)
    if num_classes == 10:
        folder, key = 'cifar-10-batches-py', 'labels'
        train_files = [f'data_batch_{i}' for i in range(1, 6)]
        test_file, meta = 'test_batch', ('batches.meta', 'label_names')
    else:
        folder, key = 'cifar-100-python', 'fine_labels'
        train_files, test_file = ['train'], 'test'
        meta = ('meta', 'fine_label_names')
    path = os.path.join(root, folder)
    os.makedirs(path, exist_ok=True)

    def batch(per_class):
        labels = np.repeat(np.arange(num_classes), per_class)
        rng.shuffle(labels)
        data = rng.randint(0, 256, (len(labels), 3 * 32 * 32)).astype(np.uint8)
        return data, labels.tolist()

    data, labels = batch(train_per_class)
    for i, name in enumerate(train_files):
        part = slice(i, None, len(train_files))
        with open(os.path.join(path, name), 'wb') as f:
            pickle.dump({'data': data[part], key: labels[part]}, f)
    data, labels = batch(test_per_class)
    with open(os.path.join(path, test_file), 'wb') as f:
        pickle.dump({'data': data, key: labels}, f)
    with open(os.path.join(path, meta[0]), 'wb') as f:
        pickle.dump({meta[1]: [f'c{i}' for i in range(num_classes)]}, f)
    return root


TOOLS_TEST = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'test.py')


def parse_test_flags(*argv: str, **overrides) -> argparse.Namespace:
    """What tools/test.py's own parser makes of ``CONFIG CHECKPOINT
    [FLAGS]`` (the ``args`` its ``run_test`` receives), with ``overrides``
    set on the result, each the attribute of an existing flag."""
    spec = importlib.util.spec_from_file_location('tools_test', TOOLS_TEST)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(list(argv))
    for key, value in overrides.items():
        if not hasattr(args, key):
            raise AttributeError(f'tools/test.py has no flag for {key!r}')
        setattr(args, key, value)
    return args

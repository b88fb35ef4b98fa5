"""Tiny detectors and RoI batches for CPU tests of mmnpe.det."""
import copy
from typing import Optional

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmnpe  # noqa: F401  (registers everything)

NUM_CLASSES = 5


def tiny_detector_cfg(num_classes: int = NUM_CLASSES,
                      bbox_head: Optional[dict] = None,
                      with_mask: bool = False,
                      cascade: bool = False,
                      size_divisor: int = 32,
                      roi_head_type: Optional[str] = None) -> ConfigDict:
    """A Faster / Mask / Cascade R-CNN small enough for CPU tests: a ResNet-18
    of 8 base channels, FPN of 16, 64 RoIs per image, 4 anchor levels."""
    norm_cfg = dict(type='BN', requires_grad=True)
    head = dict(
        type='Shared2FCBBoxHead',
        in_channels=16,
        fc_out_channels=32,
        roi_feat_size=7,
        num_classes=num_classes,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0., 0., 0., 0.],
            target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_class_agnostic=cascade,
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
    head.update(copy.deepcopy(bbox_head or {}))
    rcnn_train = dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.5,
            match_low_quality=False,
            ignore_iof_thr=-1),
        sampler=dict(
            type='RandomSampler',
            num=64,
            pos_fraction=0.25,
            neg_pos_ub=-1,
            add_gt_as_proposals=True),
        mask_size=28,
        pos_weight=-1,
        debug=False)
    roi_extractor = dict(
        type='SingleRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=16,
        featmap_strides=[4, 8, 16, 32])
    if cascade:
        roi_head = dict(
            type=roi_head_type or 'CascadeRoIHead',
            num_stages=3,
            stage_loss_weights=[1, 0.5, 0.25],
            bbox_roi_extractor=roi_extractor,
            bbox_head=[copy.deepcopy(head) for _ in range(3)])
        rcnn_train = [copy.deepcopy(rcnn_train) for _ in range(3)]
        for i, thr in enumerate((0.5, 0.6, 0.7)):
            rcnn_train[i]['assigner'].update(
                pos_iou_thr=thr, neg_iou_thr=thr, min_pos_iou=thr)
    else:
        roi_head = dict(
            type=roi_head_type or 'StandardRoIHead',
            bbox_roi_extractor=roi_extractor,
            bbox_head=head)
    if with_mask:
        roi_head.update(
            mask_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(
                    type='RoIAlign', output_size=14, sampling_ratio=0),
                out_channels=16,
                featmap_strides=[4, 8, 16, 32]),
            mask_head=dict(
                type='FCNMaskHead',
                num_convs=1,
                in_channels=16,
                conv_out_channels=16,
                num_classes=num_classes,
                loss_mask=dict(
                    type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)))
    cfg = dict(
        type='CascadeRCNN' if cascade else
        ('MaskRCNN' if with_mask else 'FasterRCNN'),
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_mask=with_mask,
            pad_size_divisor=size_divisor),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=-1,
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch'),
        neck=dict(
            type='FPN',
            in_channels=[8, 16, 32, 64],
            out_channels=16,
            num_outs=4),
        rpn_head=dict(
            type='RPNHead',
            in_channels=16,
            feat_channels=16,
            anchor_generator=dict(
                type='AnchorGenerator',
                scales=[4],
                ratios=[0.5, 1.0, 2.0],
                strides=[4, 8, 16, 32]),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[.0, .0, .0, .0],
                target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=roi_head,
        train_cfg=dict(
            rpn=dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=0.7,
                    neg_iou_thr=0.3,
                    min_pos_iou=0.3,
                    match_low_quality=True,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler',
                    num=64,
                    pos_fraction=0.5,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=False),
                allowed_border=-1,
                pos_weight=-1,
                debug=False),
            rpn_proposal=dict(
                nms_pre=200,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=rcnn_train),
        test_cfg=dict(
            rpn=dict(
                nms_pre=200,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=dict(
                score_thr=0.0001,
                nms=dict(type='nms', iou_threshold=0.5),
                max_per_img=100,
                mask_thr_binary=0.5)))
    return ConfigDict(cfg)


def random_det_batch(num_images: int = 2,
                     size: int = 64,
                     num_classes: int = NUM_CLASSES,
                     seed: int = 0,
                     with_mask: bool = False) -> dict:
    """A data batch as mmdet's data loader gives it: uint8 images, boxes,
    labels (and bitmap masks)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_images):
        inputs.append(
            torch.randint(
                0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        n = 3
        xy = torch.randint(0, size // 2, (n, 2), generator=g).float()
        wh = torch.randint(8, size // 2, (n, 2), generator=g).float()
        boxes = torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=1)
        gt = InstanceData(
            bboxes=boxes,
            labels=torch.randint(0, num_classes, (n, ), generator=g))
        if with_mask:
            masks = torch.zeros(n, size, size, dtype=torch.uint8)
            for j, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
                masks[j, y1:y2, x1:x2] = 1
            gt.masks = BitmapMasks(masks.numpy(), size, size)
        sample = DetDataSample(
            metainfo=dict(
                img_id=i,
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                scale_factor=(1.0, 1.0),
                batch_input_shape=(size, size)))
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build_detector(cfg: dict):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model

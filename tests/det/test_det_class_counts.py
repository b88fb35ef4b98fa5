"""Detection class counts: instances (default) or images per category of
an LVIS-format training set, equal to the annotation file's instance_count /
image_count and to a direct count of the json; repeat-factor sampling
(ClassBalancedDataset) and RepeatDataset counted as trained on; the count
hook fills the RoI losses; zero counts refused with the category named;
tools/analysis/class_counts.py on a detection config."""
import json
import math
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from det_helpers import tiny_detector_cfg
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config

from mmnpe.det import lvis_category_counts, synthetic_lvis_classes
from mmnpe.engine import (ClassCountsHook, build_counting_dataset,
                          count_dataset_classes)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _dataset_cfg(root, classes, ann='annotations/lvis_v1_train.json'):
    return dict(
        type='LVISV1Dataset',
        data_root=root + '/',
        ann_file=ann,
        data_prefix=dict(img=''),
        metainfo=dict(classes=tuple(classes)),
        pipeline=[])


def _json_counts(root, num_classes, weights=None):
    """Instances and images per category straight from the json."""
    with open(osp.join(root, 'annotations', 'lvis_v1_train.json')) as f:
        data = json.load(f)
    per_image = {img['id']: [] for img in data['images']}
    for ann in data['annotations']:
        per_image[ann['image_id']].append(ann['category_id'] - 1)
    inst, imgs = np.zeros(num_classes, int), np.zeros(num_classes, int)
    for img_id, labels in per_image.items():
        w = 1 if weights is None else weights[img_id]
        np.add.at(inst, labels, w)
        np.add.at(imgs, sorted(set(labels)), w)
    return inst.tolist(), imgs.tolist(), per_image


def test_instances_and_images_of_the_lvis_set(lvis_root):
    root, info = lvis_root
    classes = synthetic_lvis_classes(6)
    ds = DATASETS.build(_dataset_cfg(root, classes))
    inst = count_dataset_classes(ds)
    imgs = count_dataset_classes(ds, kind='images')
    assert inst['kind'] == 'instances' and imgs['kind'] == 'images'
    want_inst, want_imgs, _ = _json_counts(root, 6)
    assert inst['counts'] == want_inst == info['instance_counts']
    assert imgs['counts'] == want_imgs == info['image_counts']
    # What the annotation file states, for a set neither repeated nor
    # filtered: the same counts; its num_images are the annotated images
    # (the set filter_empty_gt builds, next test).
    ann = osp.join(root, 'annotations', 'lvis_v1_train.json')
    for stated, counted in ((lvis_category_counts(ann), inst),
                            (lvis_category_counts(ann, kind='images'), imgs)):
        assert dict(stated, num_images=None) == dict(counted, num_images=None)
        assert stated['num_images'] < counted['num_images'] == len(ds)
    # The most frequent category is sometimes twice in an image.
    assert inst['counts'][0] > imgs['counts'][0]
    assert inst['counts'][1:] == imgs['counts'][1:]


def test_lvis_num_images_are_the_annotated_images_the_filter_keeps(
        lvis_root, tmp_path):
    """An image without annotations is in the file but not in the training
    set ``filter_empty_gt`` builds: ``num_images`` is the latter's."""
    root, _ = lvis_root
    with open(osp.join(root, 'annotations', 'lvis_v1_train.json')) as f:
        data = json.load(f)
    empty = dict(data['images'][0], id=10**6, file_name='empty.jpg')
    data['images'].append(empty)
    ann = tmp_path / 'with_empty.json'
    ann.write_text(json.dumps(data))
    classes = synthetic_lvis_classes(6)
    ds = DATASETS.build(
        dict(
            _dataset_cfg(root, classes, ann=str(ann)),
            filter_cfg=dict(filter_empty_gt=True)))
    counted = count_dataset_classes(ds, kind='images')
    stated = lvis_category_counts(str(ann), kind='images')
    assert stated['num_images'] == counted['num_images'] == len(ds)
    annotated = {a['image_id'] for a in data['annotations']}
    assert stated['num_images'] == len(annotated) < len(data['images'])
    assert stated == counted


@pytest.mark.parametrize('images, tag', [(1, 'r'), (10, 'r'), (11, 'c'),
                                         (100, 'c'), (101, 'f')])
def test_frequency_tags_are_lvis_groups(images, tag):
    from mmnpe.det import frequency_tag
    assert frequency_tag(images) == tag


def test_repeat_factor_sampling_counts_what_is_trained_on(lvis_root):
    root, _ = lvis_root
    classes = synthetic_lvis_classes(6)
    thr = 0.3
    ds = DATASETS.build(
        dict(
            type='ClassBalancedDataset',
            oversample_thr=thr,
            dataset=_dataset_cfg(root, classes)))
    _, imgs, per_image = _json_counts(root, 6)
    # mmdet's repeat factors, from the formula: r(c) = max(1, sqrt(t/f_c)),
    # an image repeated ceil(max over its categories).
    freq = np.asarray(imgs) / len(per_image)
    r = np.maximum(1, np.sqrt(thr / freq))
    weights = {
        i: math.ceil(max([r[c] for c in labels], default=1))
        for i, labels in per_image.items()
    }
    assert max(weights.values()) > 1
    want_inst, want_imgs, _ = _json_counts(root, 6, weights)
    assert count_dataset_classes(ds)['counts'] == want_inst
    assert count_dataset_classes(ds, kind='images')['counts'] == want_imgs
    plain = count_dataset_classes(ds.dataset)['counts']
    assert want_inst != plain
    # The rare categories gain the most.
    gain = np.asarray(want_inst) / np.asarray(plain)
    assert gain[-1] > gain[0]


def test_repeat_and_concat_wrappers(lvis_root):
    root, _ = lvis_root
    classes = synthetic_lvis_classes(6)
    base = count_dataset_classes(DATASETS.build(_dataset_cfg(
        root, classes)))['counts']
    rep = DATASETS.build(
        dict(
            type='RepeatDataset', times=3, dataset=_dataset_cfg(root,
                                                                classes)))
    assert count_dataset_classes(rep)['counts'] == [3 * c for c in base]
    cat = DATASETS.build(
        dict(type='ConcatDataset', datasets=[_dataset_cfg(root, classes)] * 2))
    assert count_dataset_classes(cat)['counts'] == [2 * c for c in base]


def test_kind_is_checked(lvis_root):
    root, _ = lvis_root
    ds = DATASETS.build(_dataset_cfg(root, synthetic_lvis_classes(6)))
    with pytest.raises(ValueError, match="counted in \\('instances', "):
        count_dataset_classes(ds, kind='pixels')


def _runner(model, dataset):
    loader = type('L', (), dict(dataset=dataset))()
    return type('R', (), dict(model=model, train_dataloader=loader))()


@pytest.mark.parametrize('loss, kind',
                         [('BalancedSigmoidRoILoss', 'images'),
                          ('BalancedSoftmaxRoILoss', 'instances'),
                          ('PostHocLARoILoss', 'instances')])
def test_class_counts_hook_fills_the_roi_losses(lvis_root, loss, kind):
    root, info = lvis_root
    classes = synthetic_lvis_classes(6)
    model = MODELS.build(
        tiny_detector_cfg(
            num_classes=6,
            bbox_head=dict(loss_cls=dict(type=loss, kind=kind))))
    runner = _runner(model, DATASETS.build(_dataset_cfg(root, classes)))
    hook = ClassCountsHook()
    hook.before_run(runner)
    hook.before_train(runner)
    got = model.roi_head.bbox_head.loss_cls.class_counts
    want = info['image_counts' if kind == 'images' else 'instance_counts']
    assert torch.equal(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize('variant', ['slides', 'balms'])
def test_image_frequencies_under_repeat_factor_sampling(lvis_root, variant):
    """kind='images': ClassCountsHook gives the image counts and the number
    of images trained on, repeats included, so f_j = image_count_j /
    number_of_images (not / the sum of image counts)."""
    root, _ = lvis_root
    classes = synthetic_lvis_classes(6)
    ds = DATASETS.build(
        dict(
            type='ClassBalancedDataset',
            oversample_thr=0.3,
            dataset=_dataset_cfg(root, classes)))
    model = MODELS.build(
        tiny_detector_cfg(
            num_classes=6,
            bbox_head=dict(
                loss_cls=dict(
                    type='BalancedSigmoidRoILoss',
                    kind='images',
                    variant=variant))))
    runner = _runner(model, ds)
    hook = ClassCountsHook()
    hook.before_run(runner)
    hook.before_train(runner)
    loss = model.roi_head.bbox_head.loss_cls
    repeated = count_dataset_classes(ds, kind='images')
    assert repeated['num_images'] == len(ds) > len(ds.dataset)
    assert float(loss.num_images) == len(ds)
    counts = torch.tensor(repeated['counts'], dtype=torch.float64)
    assert torch.equal(loss.class_counts, counts)
    f = counts / len(ds)
    want = (f / (1 - f)).log()
    if variant == 'slides':
        want = want + math.log(6 - 1)
    torch.testing.assert_close(loss.offset(), want)
    # The sum of image counts is not the number of images.
    assert counts.sum() > len(ds)


def test_zero_counts_are_refused_with_the_category_named(lvis_root, tmp_path):
    root, _ = lvis_root
    with open(osp.join(root, 'annotations', 'lvis_v1_train.json')) as f:
        data = json.load(f)
    data['categories'].append(
        dict(
            id=7,
            name='ghost_hexagon',
            synset='x.n.01',
            synonyms=[],
            frequency='r',
            image_count=0,
            instance_count=0))
    ann = tmp_path / 'train.json'
    ann.write_text(json.dumps(data))
    classes = synthetic_lvis_classes(6) + ['ghost_hexagon']
    ds = DATASETS.build(_dataset_cfg(root, classes, ann=str(ann)))
    model = MODELS.build(
        tiny_detector_cfg(
            num_classes=7,
            bbox_head=dict(loss_cls=dict(type='BalancedSoftmaxRoILoss'))))
    with pytest.raises(
            ValueError,
            match=r"class_counts\[6\] is 0 \(class index 6, "
            r"'ghost_hexagon', never occurs"):
        ClassCountsHook().before_train(_runner(model, ds))


def test_zero_counts_train_with_eps(lvis_root, tmp_path):
    """What the refusal above offers works: eps lets the hook fill counts
    with an empty category."""
    root, _ = lvis_root
    with open(osp.join(root, 'annotations', 'lvis_v1_train.json')) as f:
        data = json.load(f)
    data['categories'].append(
        dict(
            id=7,
            name='ghost_hexagon',
            synset='x.n.01',
            synonyms=[],
            frequency='r',
            image_count=0,
            instance_count=0))
    ann = tmp_path / 'train.json'
    ann.write_text(json.dumps(data))
    classes = synthetic_lvis_classes(6) + ['ghost_hexagon']
    ds = DATASETS.build(_dataset_cfg(root, classes, ann=str(ann)))
    for loss in ('BalancedSoftmaxRoILoss', 'PostHocLARoILoss',
                 'BalancedSigmoidRoILoss'):
        model = MODELS.build(
            tiny_detector_cfg(
                num_classes=7,
                bbox_head=dict(loss_cls=dict(type=loss, eps=1e-12))))
        ClassCountsHook().before_train(_runner(model, ds))
        counts = model.roi_head.bbox_head.loss_cls.class_counts
        assert counts[6] == 0 and counts[:6].min() > 0


def test_class_counts_hook_refuses_a_dense_head_before_anything_runs():
    model = MODELS.build(
        dict(
            type='RetinaNet',
            data_preprocessor=dict(type='DetDataPreprocessor'),
            backbone=dict(
                type='ResNet',
                depth=18,
                base_channels=8,
                num_stages=4,
                out_indices=(3, )),
            neck=None,
            bbox_head=dict(
                type='RetinaHead',
                num_classes=5,
                in_channels=64,
                feat_channels=8,
                stacked_convs=1,
                anchor_generator=dict(
                    type='AnchorGenerator',
                    octave_base_scale=4,
                    scales_per_octave=1,
                    ratios=[1.0],
                    strides=[32]),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                loss_cls=dict(type='BalancedSigmoidRoILoss')),
            train_cfg=None,
            test_cfg=None))
    with pytest.raises(TypeError, match=r'bbox_head: .*One-stage'):
        ClassCountsHook().before_run(_runner(model, None))


def test_class_counts_tool_on_a_detection_config(lvis_root, tmp_path,
                                                 monkeypatch, capsys):
    """tools/analysis/class_counts.py (in this process: its main())."""
    import runpy
    root, info = lvis_root
    config = osp.join(REPO, 'configs', 'demo',
                      'faster-rcnn_r18-tiny_fpn_sample1e-1_synthetic-lvis.py')
    tool = osp.join(REPO, 'tools', 'analysis', 'class_counts.py')
    out = tmp_path / 'counts.json'
    opts = [
        f'train_dataloader.dataset.dataset.data_root={root}/',
        'train_dataloader.dataset.dataset.metainfo.classes=' +
        repr(tuple(synthetic_lvis_classes(6))).replace(' ', '')
    ]
    for kind in ('instances', 'images'):
        monkeypatch.setattr(sys, 'argv', [
            tool, config, '--kind', kind, '--out',
            str(out), '--cfg-options', *opts
        ])
        runpy.run_path(tool, run_name='__main__')
        assert f'wrote {kind} per class of 6 classes' in capsys.readouterr(
        ).out
        result = json.loads(out.read_text())
        assert result['kind'] == kind
        assert result['classes'] == synthetic_lvis_classes(6)
        plain = info['instance_counts' if kind ==
                     'instances' else 'image_counts']
        # The demo's repeat-factor config repeats rare images (t = 0.1).
        assert sum(result['counts']) > sum(plain)
        assert result['counts'][-1] > plain[-1]
        # The images trained on, repeats included: what image frequencies
        # divide by.
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(
            dict(o.split('=', 1) for o in opts[:1])
            | {opts[1].split('=', 1)[0]: tuple(synthetic_lvis_classes(6))})
        built = build_counting_dataset(cfg)
        assert result['num_images'] == len(built) > len(built.dataset)

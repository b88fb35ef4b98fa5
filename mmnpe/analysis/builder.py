"""Building what the analysis tools run on: config, model with checkpoint,
data loaders and the evaluation settings of a config."""
import copy
import re
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.dataset import ConcatDataset
from mmengine.logging import print_log
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import DATASETS, METRICS, MODELS, init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from torch.utils.data import DataLoader, Dataset, Subset

from mmnpe.engine import (LoadRecorder, build_counting_dataset, check_load,
                          count_dataset_classes, dataset_parts,
                          fill_unset_class_counts, map_pipelines,
                          pipeline_dataset_cfgs)


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """The config (a path or a :class:`Config`) with ``--cfg-options``
    merged in, its default scope made current."""
    cfg = Config.fromfile(config) if isinstance(config,
                                                str) else copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return cfg


def build_model(cfg: Config,
                checkpoint: Optional[str] = None,
                device: str = 'cpu') -> nn.Module:
    """The config's model in eval mode, with the checkpoint's weights.

    The checkpoint is judged as ``tools/test.py`` judges it
    (:func:`mmnpe.engine.check_load` in 'test' mode, after the model's own
    load hooks): a checkpoint lacking a tensor the prediction uses, or
    holding it with another shape, is refused -- a CE checkpoint given to
    an NPE config would otherwise leave the PEMs at their random
    initialisation and every number downstream meaningless. Count buffers
    may be missing; count-using modules left without counts get the
    training set's, as :class:`ClassCountsHook` gives them before testing.

    Args:
        cfg (Config): Loaded config (see :func:`load_config`).
        checkpoint (str, optional): Checkpoint path or URL. Defaults to None
            (the freshly initialised model).
        device (str): Defaults to 'cpu'.

    Returns:
        nn.Module: The model, on ``device``, in eval mode.
    """
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        # As the Runner merges it: a top-level data_preprocessor (mmpretrain
        # configs) fills in the model's.
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    # As the Runner does without distributed training: SyncBN -> BN.
    model = revert_sync_batchnorm(model)
    if checkpoint is not None:
        ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt)
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        # Judged after the model's own load hooks, as tools/test.py judges
        # a checkpoint (InputCheckHook): refused if a tensor the prediction
        # uses did not load.
        LoadRecorder(
            model,
            lambda record: check_load(record, model, 'test', checkpoint))
        load_state_dict(model, state, strict=False)
    # As ClassCountsHook before testing: a fixed-prior module (post-hoc LA
    # head) built with class_counts=None and given none by the checkpoint
    # (a CE one) counts the training set.
    fill_unset_class_counts(model, cfg)
    return model.to(device).eval()


def eval_dataloader_cfg(cfg: Config, split: str = 'test') -> ConfigDict:
    """``{split}_dataloader`` of the config ('val' or 'test')."""
    if split not in ('val', 'test'):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    loader = cfg.get(f'{split}_dataloader')
    if loader is None:
        raise ValueError(f'the config has no {split}_dataloader')
    return copy.deepcopy(loader)


def train_set_cfg(cfg: Config) -> ConfigDict:
    """The config's training dataset with the test pipeline.

    The same data as training (``reduce_zero_label`` and the like) read
    with the evaluation pipeline (no random augmentation); wrappers are
    kept here and dropped by :func:`build_train_set`.
    """
    if cfg.get('train_dataloader') is None:
        raise ValueError('the config has no train_dataloader')
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if loader is None:
        raise ValueError('the config has no test_dataloader or '
                         'val_dataloader, whose pipeline the training set '
                         'would be read with')
    holders = pipeline_dataset_cfgs(loader['dataset'])
    if not holders:
        raise ValueError('the test dataset config has no pipeline')
    pipeline = holders[0]['pipeline']
    return ConfigDict(
        map_pipelines(cfg.train_dataloader.dataset,
                      lambda _: copy.deepcopy(pipeline)))


def build_train_set(cfg: Config) -> Dataset:
    """The training set of :func:`train_set_cfg`, built, each image once:
    repeat / class-balanced wrappers are dropped, as when counting classes
    (:func:`mmnpe.engine.dataset_parts`)."""
    parts = dataset_parts(build_dataset(train_set_cfg(cfg)))
    for part in parts:
        if hasattr(part, 'full_init'):
            part.full_init()
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def build_dataloader(loader_cfg: dict,
                     dataset: Optional[Dataset] = None,
                     batch_size: Optional[int] = None) -> DataLoader:
    """A deterministic data loader (no shuffling) from a dataloader config,
    optionally over an already built ``dataset``."""
    loader_cfg = copy.deepcopy(dict(loader_cfg))
    if dataset is not None:
        loader_cfg['dataset'] = dataset
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader_cfg.pop('batch_sampler', None)
    if batch_size is not None:
        loader_cfg['batch_size'] = batch_size
    # Workers that outlive the loop are pointless for one pass.
    loader_cfg['persistent_workers'] = False
    return Runner.build_dataloader(loader_cfg)


def build_dataset(dataset_cfg: dict) -> Dataset:
    """Build (and fully initialise) a dataset from its config."""
    dataset = DATASETS.build(copy.deepcopy(dict(dataset_cfg)))
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    return dataset


def check_num_samples(num_samples: Optional[int]) -> None:
    """``num_samples`` must be None or an int >= 1."""
    if num_samples is not None and (isinstance(num_samples, bool)
                                    or not isinstance(num_samples, int)
                                    or num_samples < 1):
        raise ValueError('num_samples must be an int >= 1 or None, got '
                         f'{num_samples!r}')


def sample_subset(dataset: Dataset,
                  num_samples: Optional[int],
                  seed: int = 0) -> Tuple[Dataset, int]:
    """A seeded random subset of ``num_samples`` items (in dataset order),
    or the whole dataset when ``num_samples`` is None or not smaller."""
    check_num_samples(num_samples)
    size = len(dataset)
    if num_samples is None or num_samples >= size:
        if num_samples is not None and num_samples > size:
            print_log(
                f'num_samples={num_samples} exceeds the {size} samples of '
                'the dataset; using all of them',
                logger='current')
        return dataset, size
    # Random, not the first N: many data sets are stored class by class.
    rng = np.random.RandomState(seed)
    indices = np.sort(rng.choice(size, num_samples, replace=False))
    return Subset(dataset, indices.tolist()), num_samples


def find_metric(cfg: Config, split: str, metric_type: type):
    """The first metric of ``{split}_evaluator`` that is an instance of
    ``metric_type``, built, or None."""
    evaluator = cfg.get(f'{split}_evaluator')
    if evaluator is None:
        return None
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    metrics: Sequence = evaluator if isinstance(evaluator,
                                                (list,
                                                 tuple)) else [evaluator]
    for metric_cfg in metrics:
        metric = METRICS.build(copy.deepcopy(metric_cfg))
        if isinstance(metric, metric_type):
            return metric
    return None


def classification_train_counts(cfg: Config) -> List[int]:
    """Training images per class of a classification config, counted as
    ``tools/analysis/class_counts.py`` and :class:`ClassCountsHook` count
    them (labels only, each image once)."""
    result = count_dataset_classes(build_counting_dataset(cfg))
    if result['kind'] != 'images':
        raise ValueError('the config\'s training set is not a '
                         'classification one (it has pixel counts)')
    return result['counts']

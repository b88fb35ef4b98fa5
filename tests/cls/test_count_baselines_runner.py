"""The count-based classification baselines through mmengine's Runner on
DigitsLT (real data, offline): post-hoc LA on a CE checkpoint with counts
taken from the training set at test time, and LA-loss training whose counts
survive resume."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from mmnpe.cls import DigitsLT

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')


def _cfg(name, work_dir, **options):
    cfg = Config.fromfile(osp.join(DEMO, name))
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger.interval = 1000
    cfg.merge_from_dict(options)
    return cfg


def _train_counts():
    return DigitsLT(split='train', pipeline=[]).metainfo['train_class_counts']


def test_posthoc_la_on_a_ce_checkpoint(tmp_path):
    # A "stock" CE checkpoint: the CE config's model, saved as Runner does.
    cfg = _cfg('ce_resnet32_digits-lt.py', tmp_path / 'ce')
    init_default_scope('mmpretrain')
    model_cfg = cfg.model
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    ce = MODELS.build(model_cfg)
    ce.init_weights()
    # Logits 0.5 * log pi: CE predicts the head class everywhere, LA
    # (z - log pi = -0.5 log pi) the rarest one.
    counts = torch.tensor(_train_counts(), dtype=torch.float)
    torch.nn.init.zeros_(ce.head.fc.weight)
    ce.head.fc.bias.data = 0.5 * (counts / counts.sum()).log()
    ckpt = str(tmp_path / 'ce.pth')
    torch.save(dict(state_dict=ce.state_dict(), meta=dict()), ckpt)

    ce_metrics = Runner.from_cfg(
        _cfg('ce_resnet32_digits-lt.py', tmp_path / 'ce_test',
             load_from=ckpt)).test()
    runner = Runner.from_cfg(
        _cfg(
            'la-posthoc_resnet32_digits-lt.py',
            tmp_path / 'la',
            load_from=ckpt))
    la_metrics = runner.test()
    head = runner.model.head
    # Counted from the training set when the test started.
    assert head.class_counts.tolist() == _train_counts()
    assert torch.equal(head.fc.weight, ce.head.fc.weight)
    per_class = [m['lt/per_class'] for m in (ce_metrics, la_metrics)]
    assert per_class[0] == [100.0] + [0.0] * 9
    assert per_class[1] == [0.0] * 9 + [100.0]


def test_la_loss_training_fills_counts_and_resumes(tmp_path):
    work = tmp_path / 'la'
    runner = Runner.from_cfg(
        _cfg(
            'la-loss_resnet32_digits-lt.py', work, **{
                'train_cfg.max_epochs': 1,
                'train_cfg.val_interval': 10,
                'default_hooks.checkpoint.interval': 1
            }))
    runner.train()
    loss = runner.model.head.loss_module
    assert loss.class_counts.tolist() == _train_counts()
    ckpt = torch.load(str(work / 'epoch_1.pth'), weights_only=True)
    assert ckpt['state_dict']['head.loss_module.class_counts'].tolist() == (
        _train_counts())

    resumed = Runner.from_cfg(
        _cfg(
            'la-loss_resnet32_digits-lt.py',
            work,
            resume=True,
            load_from=str(work / 'epoch_1.pth'),
            **{
                'train_cfg.max_epochs': 2,
                'train_cfg.val_interval': 10,
                'default_hooks.checkpoint.interval': 1
            }))
    resumed.train()
    assert resumed.epoch == 2
    assert resumed.model.head.loss_module.class_counts.tolist() == (
        _train_counts())

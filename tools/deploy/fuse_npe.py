"""Fold the PEMs of an NPE classification head into one linear classifier.

Writes OUT_DIR/<config name>_fused.py and OUT_DIR/<checkpoint name>_fused.pth:
the stock head (LinearClsHead ...) with the same predictions. The config
keeps custom_imports=['mmnpe'] while anything in it (data set, metric, hook,
backbone ...) is mmnpe's, so it runs tools/test.py in a fresh interpreter;
with nothing of mmnpe's left, mmpretrain loads it without mmnpe.

Usage: python tools/deploy/fuse_npe.py CONFIG CHECKPOINT OUT_DIR
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import CheckpointLoader

import mmnpe  # noqa: F401  (registers the components)
from mmnpe.cls import fuse_npe_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out_dir')
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    ckpt = CheckpointLoader.load_checkpoint(
        args.checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt)
    fused_cfg, fused = fuse_npe_classifier(cfg, state_dict)

    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(args.config))[0]
    cfg_out = osp.join(args.out_dir, f'{stem}_fused.py')
    fused_cfg.dump(cfg_out)
    ckpt_out = osp.join(
        args.out_dir,
        osp.splitext(osp.basename(args.checkpoint))[0] + '_fused.pth')
    # Only plain types in meta: the training meta holds mmengine objects
    # that stock torch >= 2.6 refuses to load with weights_only=True.
    meta = {
        k: v
        for k, v in ckpt.get('meta', {}).items() if k == 'dataset_meta'
    }
    torch.save(dict(state_dict=fused, meta=meta), ckpt_out)
    print(f'wrote {cfg_out}\nwrote {ckpt_out}')


if __name__ == '__main__':
    main()

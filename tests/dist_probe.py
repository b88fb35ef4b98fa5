"""A hook the distributed tests add to their configs (``custom_imports``):
each rank writes what DDP registered and its weights at the start and the
end of training into the work dir, for the test to compare."""
import json
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.nn.parallel import DistributedDataParallel


@HOOKS.register_module(force=True)
class DistProbeHook(Hook):
    priority = 'LOWEST'

    def _path(self, runner, name):
        return osp.join(runner.work_dir, f'rank{runner.rank}_{name}')

    def before_train(self, runner):
        wrapper = runner.model
        model = wrapper.module if is_model_wrapper(wrapper) else wrapper
        info = dict(
            world_size=runner.world_size,
            ddp=isinstance(wrapper, DistributedDataParallel),
            trainable=[
                n for n, p in model.named_parameters() if p.requires_grad
            ],
            trainable_numel=sum(p.numel() for p in model.parameters()
                                if p.requires_grad),
            all_numel=sum(p.numel() for p in model.parameters()))
        if info['ddp']:
            # What the reducer holds: the parameters DDP all-reduces.
            data = wrapper._get_ddp_logging_data()
            info.update(
                ddp_num_parameter_tensors=data['num_parameter_tensors'],
                ddp_total_parameter_size_bytes=data[
                    'total_parameter_size_bytes'],
                ddp_find_unused_parameters=wrapper.find_unused_parameters)
        with open(self._path(runner, 'info.json'), 'w') as f:
            json.dump(info, f)
        torch.save(model.state_dict(), self._path(runner, 'start.pth'))

    def after_train(self, runner):
        wrapper = runner.model
        model = wrapper.module if is_model_wrapper(wrapper) else wrapper
        torch.save(model.state_dict(), self._path(runner, 'final.pth'))

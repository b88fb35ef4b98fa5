"""Loading a model for analysis: checkpoints that do not fit are refused."""
import pytest
import torch

from mmnpe.analysis import build_model, load_config


def test_prefixed_checkpoint_and_missing_buffers_load(seg_npe, tmp_path):
    config, ckpt = seg_npe
    state = torch.load(ckpt)['state_dict']
    # As a DDP-wrapped model saves it, and without BN's batch counters.
    wrapped = {
        f'module.{k}': v
        for k, v in state.items() if 'num_batches_tracked' not in k
    }
    path = tmp_path / 'wrapped.pth'
    torch.save(dict(meta={}, state_dict=wrapped), str(path))
    model = build_model(load_config(config), str(path))
    assert not model.training
    for k, v in model.state_dict().items():
        if 'num_batches_tracked' not in k:
            assert torch.equal(v, state[k]), k


def test_checkpoint_of_another_shape_is_refused(seg_npe, tmp_path):
    config, ckpt = seg_npe
    state = torch.load(ckpt)['state_dict']
    state['pem_heads.0.conv_seg.weight'] = torch.zeros(3, 8, 1, 1)
    path = tmp_path / 'other.pth'
    torch.save(dict(meta={}, state_dict=state), str(path))
    with pytest.raises(
            ValueError,
            match=r'pem_heads\.0\.conv_seg\.weight \(checkpoint '
            r'torch.Size\(\[3, 8, 1, 1\]\) vs model '
            r'torch.Size\(\[6, 8, 1, 1\]\)\); they would predict from their '
            r'random initialisation'):
        build_model(load_config(config), str(path))

"""MMDeploy's ``torch2onnx`` of mmnpe's segmentors keeps the correction.

MMDeploy rewrites ``EncoderDecoder.predict`` to ``extract_feat`` + the
decode head; without :mod:`mmnpe.deploy.mmseg_rewriters` the ONNX model of
an NPE-LA, post-hoc LA or ``target_prior`` segmentor is the uncorrected one
(the argmax equals alpha = 0 on every pixel). On the demo segmentors with
non-trivial heads and PEMs (corrected and uncorrected argmax differ on
> 20 % of pixels, checked), ONNX Runtime must give PyTorch's corrected
argmax on >= 99.9 % of pixels and its logits within 1e-4, with MMDeploy's
onnxruntime deploy configs (static: argmax in the graph; dynamic: logits),
under both of torch's exporters; the stock segmentor is the control.
"""
import pytest
import torch
from mmengine.config import Config
from onnx_export_helpers import (DEPLOY, SEG_LA, SEG_NPE, SEG_STOCK, SLOW,
                                 build_model, load_cfg, mmdeploy_input,
                                 mmdeploy_torch2onnx, perturb_seg,
                                 random_image, run_ort, save_checkpoint)

pytest.importorskip('mmdeploy')

STATIC = f'{DEPLOY}/segmentation_onnxruntime_static.py'
DYNAMIC = f'{DEPLOY}/segmentation_onnxruntime_dynamic.py'
#: Pixels per class for post-hoc LA (six classes, most to least frequent).
COUNTS = [1e6, 1e5, 2e4, 3e3, 500., 50.]
#: A target prior that is neither uniform nor the training one.
TARGET = [0.05, 0.1, 0.1, 0.15, 0.2, 0.4]

MODELS = dict(
    stock=(SEG_STOCK, {}),
    npe=(SEG_NPE, {}),
    npe_alpha_half=(SEG_NPE, dict(scale_factor=0.5)),
    npe_target_prior=(SEG_NPE, dict(target_prior=TARGET)),
    la_posthoc=(SEG_LA, dict(class_counts=COUNTS)),
    la_target_prior=(SEG_LA, dict(class_counts=COUNTS, target_prior=TARGET)),
)


def _setup(name, tmp_path):
    path, model = MODELS[name]
    cfg = load_cfg(path, 'mmseg', **model)
    model = build_model(cfg)
    perturb_seg(model)
    ckpt = save_checkpoint(model, str(tmp_path / 'model.pth'))
    return cfg, model, ckpt


def _torch_logits(model, inputs, data_samples):
    metas = [s.metainfo for s in data_samples]
    with torch.no_grad():
        return model.encode_decode(inputs, metas)


def _uncorrected_logits(model, inputs, data_samples):
    """What mmdeploy's own rewrite computes: the decode head alone."""
    metas = [s.metainfo for s in data_samples]
    with torch.no_grad():
        return model.decode_head.predict(
            model.extract_feat(inputs), metas, model.test_cfg)


def _deploy_config(path, exporter, **codebase):
    """MMDeploy's config; for the dynamo exporter at opset 18, what that
    exporter writes (it converts a lower opset down afterwards, which takes
    minutes on a 2-core CPU)."""
    cfg = Config.fromfile(path)
    cfg.codebase_config.update(codebase)
    if exporter == 'dynamo':
        cfg.onnx_config.opset_version = 18
    return cfg


def _logits_config(kind, exporter):
    """MMDeploy's dynamic config, or its static one with the logits as
    output (``with_argmax=False``, as the dynamic one has)."""
    if kind == 'dynamic':
        return _deploy_config(DYNAMIC, exporter)
    return _deploy_config(STATIC, exporter, with_argmax=False)


#: (model, deploy config, exporter) of the logits tests: every model with
#: the dynamic config, NPE-LA with the static one under the dynamo exporter
#: too (which takes minutes through mmdeploy on a loaded 2-core CPU). The
#: dynamo exporter cannot take mmdeploy 1.3.1's dynamic axes: mmdeploy
#: exports a ``forward(*args, **kwargs)`` wrapper, whose ``dynamic_shapes``
#: torch derives for the one ``*args`` tuple ("Detected mismatch between
#: the structure of `inputs` and `dynamic_shapes`"), so dynamic shapes are
#: tested with the TorchScript-based exporter
#: (docs/user_guides/deployment.md, "Exporters").
LOGITS_EXPORTS = [(name, 'dynamic', 'torchscript') for name in MODELS]
LOGITS_EXPORTS.append(pytest.param('npe', 'static', 'dynamo', marks=SLOW))


@pytest.mark.parametrize('name,kind,exporter', LOGITS_EXPORTS)
def test_mmdeploy_onnx_runtime_gives_the_corrected_segmentation(
        name, kind, exporter, tmp_path):
    cfg, model, ckpt = _setup(name, tmp_path)
    img = random_image()
    deploy_cfg = _logits_config(kind, exporter)
    inputs, samples = mmdeploy_input(deploy_cfg, cfg, img, model)
    want = _torch_logits(model, inputs, samples)
    plain = _uncorrected_logits(model, inputs, samples)
    changed = (want.argmax(1) != plain.argmax(1)).float().mean().item()
    if name == 'stock':
        assert changed == 0
    else:  # else the parity below proves nothing
        assert changed > 0.2, f'correction moves only {changed:.1%} of pixels'

    onnx_file = mmdeploy_torch2onnx(deploy_cfg, cfg, ckpt, img,
                                    str(tmp_path / kind), exporter)
    got = torch.from_numpy(run_ort(onnx_file, inputs))
    assert got.shape == want.shape
    assert torch.allclose(
        got, want, atol=1e-4, rtol=0), ((got - want).abs().max())
    agree = (got.argmax(1) == want.argmax(1)).float().mean().item()
    assert agree >= 0.999, agree


@pytest.mark.parametrize('name,exporter', [('npe', 'torchscript'),
                                           ('la_posthoc', 'torchscript')])
def test_static_deploy_config_exports_the_corrected_argmax(
        name, exporter, tmp_path):
    cfg, model, ckpt = _setup(name, tmp_path)
    img = random_image(seed=1)
    deploy_cfg = _deploy_config(STATIC, exporter)
    inputs, samples = mmdeploy_input(deploy_cfg, cfg, img, model)
    want = _torch_logits(model, inputs, samples).argmax(1, keepdim=True)
    onnx_file = mmdeploy_torch2onnx(deploy_cfg, cfg, ckpt, img,
                                    str(tmp_path / 'static'), exporter)
    got = torch.from_numpy(run_ort(onnx_file, inputs))
    assert got.shape == want.shape
    agree = (got == want).float().mean().item()
    assert agree >= 0.999, agree


def test_dynamic_onnx_model_takes_other_batch_and_image_sizes(tmp_path):
    cfg, model, ckpt = _setup('npe', tmp_path)
    onnx_file = mmdeploy_torch2onnx(DYNAMIC, cfg, ckpt, random_image(),
                                    str(tmp_path / 'dynamic'), 'torchscript')
    inputs = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        want = model.encode_decode(inputs, [dict(img_shape=(96, 80))] * 2)
    got = torch.from_numpy(run_ort(onnx_file, inputs))
    assert torch.allclose(got, want, atol=1e-4, rtol=0)


def test_slide_inference_is_refused_naming_the_setting(tmp_path):
    cfg, model, ckpt = _setup('npe', tmp_path)
    cfg.model.test_cfg = dict(
        mode='slide', crop_size=(32, 32), stride=(24, 24))
    with pytest.raises(ValueError, match="test_cfg.mode is 'slide'"):
        mmdeploy_torch2onnx(STATIC, cfg, ckpt, random_image(),
                            str(tmp_path / 'slide'), 'torchscript')


def test_cascade_segmentors_are_rewritten_too():
    """The rewriter is on the shared base, which the cascade classes
    reach before mmseg's CascadeEncoderDecoder (whose predict mmdeploy
    rewrites to the stock stages)."""
    from mmseg.models.segmentors import CascadeEncoderDecoder, EncoderDecoder

    from mmnpe.seg import (LogitAdjustCascadeEncoderDecoder,
                           NPECascadeEncoderDecoder,
                           PriorAdjustedEncoderDecoder)
    for cls in (NPECascadeEncoderDecoder, LogitAdjustCascadeEncoderDecoder):
        mro = cls.__mro__
        assert mro.index(PriorAdjustedEncoderDecoder) < mro.index(
            CascadeEncoderDecoder) < mro.index(EncoderDecoder)


def test_import_mmnpe_works_without_mmdeploy():
    import subprocess
    import sys
    code = ("import sys; sys.modules['mmdeploy'] = None; import mmnpe; "
            "assert 'deploy' not in mmnpe.__all__; print('ok')")
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         check=True)
    assert out.stdout.strip() == 'ok'


def parity_table(tmp: str) -> None:
    """The parity figures of docs/user_guides/deployment.md: every model
    through MMDeploy's dynamic config (TorchScript-based exporter)."""
    import pathlib
    print('| model | corrected != uncorrected argmax | ONNX Runtime = '
          'PyTorch argmax | max abs logit difference |')
    print('|---|---|---|---|')
    for name in MODELS:
        work = pathlib.Path(tmp) / name
        work.mkdir()
        cfg, model, ckpt = _setup(name, work)
        img = random_image()
        deploy_cfg = _logits_config('dynamic', 'torchscript')
        inputs, samples = mmdeploy_input(deploy_cfg, cfg, img, model)
        want = _torch_logits(model, inputs, samples)
        plain = _uncorrected_logits(model, inputs, samples)
        onnx_file = mmdeploy_torch2onnx(deploy_cfg, cfg, ckpt, img,
                                        str(work / 'onnx'), 'torchscript')
        got = torch.from_numpy(run_ort(onnx_file, inputs))
        changed = (want.argmax(1) != plain.argmax(1)).float().mean()
        agree = (got.argmax(1) == want.argmax(1)).float().mean()
        print(f'| {name} | {changed:.1%} | {agree:.2%} | '
              f'{(got - want).abs().max():.1e} |')


if __name__ == '__main__':
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        parity_table(tmp)

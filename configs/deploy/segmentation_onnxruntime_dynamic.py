# MMDeploy deploy config: segmentation to ONNX Runtime, dynamic batch and
# image size, the logits as output ((N, C, H, W), with_argmax=False).
# The settings of MMDeploy 1.3.1's configs/mmseg/
# segmentation_onnxruntime_dynamic.py in one file (the mmdeploy wheel does not
# ship its configs); docs/user_guides/deployment.md.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    dynamic_axes=dict(
        input={
            0: 'batch',
            2: 'height',
            3: 'width'
        },
        output={
            0: 'batch',
            2: 'height',
            3: 'width'
        }))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=False)
backend_config = dict(type='onnxruntime')

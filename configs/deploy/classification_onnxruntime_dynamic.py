# MMDeploy deploy config: classification to ONNX Runtime, dynamic batch
# (output: (N, C) softmax scores). The settings of MMDeploy 1.3.1's
# configs/mmpretrain/classification_onnxruntime_dynamic.py in one file (the
# mmdeploy wheel does not ship its configs); docs/user_guides/deployment.md.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    dynamic_axes=dict(input={0: 'batch'}, output={0: 'batch'}))
codebase_config = dict(type='mmpretrain', task='Classification')
backend_config = dict(type='onnxruntime')

# MMDeploy deploy config: classification to ONNX Runtime, the input shape of
# the example image (output: (N, C) softmax scores). The settings of MMDeploy
# 1.3.1's configs/mmpretrain/classification_onnxruntime_static.py in one file
# (the mmdeploy wheel does not ship its configs);
# docs/user_guides/deployment.md.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None)
codebase_config = dict(type='mmpretrain', task='Classification')
backend_config = dict(type='onnxruntime')

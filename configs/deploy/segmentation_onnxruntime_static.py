# MMDeploy deploy config: segmentation to ONNX Runtime, the input shape of the
# example image, argmax in the graph (output: (N, 1, H, W) class indices).
# The settings of MMDeploy 1.3.1's configs/mmseg/
# segmentation_onnxruntime_static.py in one file (the mmdeploy wheel does not
# ship its configs); docs/user_guides/deployment.md.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None)
codebase_config = dict(type='mmseg', task='Segmentation')
backend_config = dict(type='onnxruntime')

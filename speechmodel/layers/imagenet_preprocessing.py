"""ImageNet input normalisation of the pre-trained backbones, as a layer."""

import keras
from keras import ops

# The per-channel constants of keras.applications.imagenet_utils.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)

MODES = ("caffe", "tf", "torch", "scale")


@keras.saving.register_keras_serializable(package="speechmodel")
class ImageNetPreprocessing(keras.layers.Layer):
    """Maps ``[0, 1]`` three-channel images to a backbone's ImageNet input.

    The input is first multiplied by ``input_scale`` (255 by default: the
    ``"minmax"`` log-mel segments lie in ``[0, 1]``, the pixel range
    keras.applications' ``preprocess_input`` expects is ``[0, 255]``), then
    normalised as ``keras.applications.imagenet_utils.preprocess_input``
    does in ``mode``:

    - ``"caffe"`` (ResNet50, VGG16): channels reversed (RGB -> BGR) and the
      ImageNet BGR mean subtracted, no scaling.
    - ``"tf"`` (ResNet50V2, MobileNetV2): scaled to ``[-1, 1]``.
    - ``"torch"`` (torchvision-converted AlexNet, ResNet18/34, VGG11):
      scaled to ``[0, 1]`` and standardised with the ImageNet mean and std.
    - ``"scale"`` (EfficientNet, which normalises inside the model): only
      the multiplication by ``input_scale``.

    The segment channels (static, delta, delta-delta) take the places of
    (R, G, B).

    Args:
        mode: one of ``"caffe"``, ``"tf"``, ``"torch"``, ``"scale"``.
        input_scale: float, the factor from the input range to ``[0, 255]``.
        **kwargs: base layer arguments.

    Example:
    >>> layer = ImageNetPreprocessing("tf")
    >>> np.asarray(layer(np.full((1, 1, 1, 3), 0.5, "float32"))).ravel()
    array([0., 0., 0.], dtype=float32)
    """

    def __init__(self, mode, input_scale=255.0, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(
                f"`mode` must be one of {MODES}. Received: mode={mode!r}"
            )
        self.mode = mode
        self.input_scale = float(input_scale)
        self.supports_masking = True

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype) * self.input_scale
        if x.shape[-1] != 3:
            raise ValueError(
                "`ImageNetPreprocessing` expects 3 channels last. "
                f"Received: shape={tuple(x.shape)}"
            )
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1)
            x = x - ops.convert_to_tensor(_CAFFE_BGR_MEAN, dtype=x.dtype)
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        elif self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=x.dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=x.dtype)
            x = (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "input_scale": self.input_scale})
        return config

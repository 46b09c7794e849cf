import keras

from speechmodel.config import FeatureConfig
from speechmodel.layers.log_mel_segments import LogMelSegments
from speechmodel.layers.temperature_scaling import TemperatureScaling
from speechmodel.models.base import FunctionalModel


def _without_compile_state(serialized):
    """A deployable model keeps no training state: the classifier's
    optimiser and loss (``compile_config``) are dropped, so that loading
    never depends on the training code's losses."""
    serialized = dict(serialized)
    serialized.pop("compile_config", None)
    return serialized


def takes_waveforms(model):
    """Whether ``model`` takes ``{"waveforms", "lengths"}`` (a pretrained
    speech front end inside) rather than log-mel ``{"segments", "mask"}``."""
    inputs = getattr(model, "input", None)
    return isinstance(inputs, dict) and "waveforms" in inputs


@keras.saving.register_keras_serializable(package="speechmodel")
class EmotionRecognizer(FunctionalModel):
    """A whole deployable model: raw 16 kHz waveforms -> emotion probabilities.

    Wraps any segment classifier (``SpeechModel`` or a baseline: a model
    taking ``{"segments", "mask"}``) behind the audio front end
    (``LogMelSegments``), or a classifier that takes the waveforms itself
    (``AudioSpeechModel``, on a pretrained speech encoder: inputs
    ``{"waveforms", "lengths"}``), and keeps the class names, so that one ``.keras``
    file holds everything inference needs. Loading it with
    ``keras.saving.load_model(path, safe_mode=True)`` rebuilds it from its
    config with this project's registered classes: no code from the file
    runs.

    Args:
        classifier: a Keras model taking ``{"segments": (B, N, F, M, 3),
            "mask": (B, N)}`` and returning (B, C) probabilities (or a dict
            holding ``"probabilities"``).
        feature_config: dict of ``FeatureConfig`` fields the classifier was
            trained with.
        class_names: the C class names, in output order.
        temperature: None, or the temperature that calibrates the
            probabilities (``speechmodel.calibration.fit_temperature`` on
            validation speakers; ``TemperatureScaling`` after the
            classifier). None: the classifier's probabilities as they are.

    Inputs: ``{"waveforms": float32 (B, samples) zero-padded,
    "lengths": int32 (B,) valid samples}``. Output: float32 (B, C).

    For batch inference, ``speechmodel.pipeline.make_dataset`` with
    ``feature_config`` feeds ``recognizer.classifier`` directly: the same
    features, computed in parallel by tf.data.
    """

    def __init__(self, classifier, feature_config=None, class_names=None, temperature=None, **kwargs):
        feature_config = FeatureConfig.from_dict(feature_config or {}).to_dict()
        class_names = [str(c) for c in (class_names or [])]
        # === Layers ===
        frontend = None
        if not takes_waveforms(classifier):
            frontend = LogMelSegments(feature_config, name="log_mel_segments")
        calibration = None
        if temperature is not None:
            calibration = TemperatureScaling(temperature, name="temperature_scaling")

        # === Functional Model ===
        waveforms = keras.Input((None,), dtype="float32", name="waveforms")
        lengths = keras.Input((), dtype="int32", name="lengths")
        if frontend is None:
            outputs = classifier({"waveforms": waveforms, "lengths": lengths})
        else:
            segments, mask = frontend(waveforms, lengths)
            outputs = classifier({"segments": segments, "mask": mask})
        if isinstance(outputs, dict):
            outputs = outputs["probabilities"]
        if calibration is not None:
            outputs = calibration(outputs)
        super().__init__(
            inputs={"waveforms": waveforms, "lengths": lengths},
            outputs=outputs,
            **kwargs,
        )
        if class_names and len(class_names) != outputs.shape[-1]:
            raise ValueError(
                f"`class_names` must name the classifier's {outputs.shape[-1]} "
                f"outputs. Received: class_names={class_names}"
            )

        # === Config ===
        self.classifier = classifier
        self.frontend = frontend
        self.feature_config = feature_config
        self.class_names = class_names
        self.calibration = calibration
        self.temperature = None if calibration is None else calibration.temperature

    @property
    def features(self):
        """The FeatureConfig the model expects."""
        return FeatureConfig.from_dict(self.feature_config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "classifier": _without_compile_state(
                    keras.saving.serialize_keras_object(self.classifier)
                ),
                "feature_config": self.feature_config,
                "class_names": self.class_names,
                "temperature": self.temperature,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(
            config["classifier"]
        )
        return cls(**config)

import pytest

from speechmodel.training import config as C
from speechmodel.training import defaults as D
from speechmodel.training import overrides as O
from speechmodel.training import schema as S
from tests.paths import REPO


def test_names_and_keys_match_the_registries():
    # The model names and keys are the registries' own (speechmodel.models.
    # registry, .frontends: read without TensorFlow; the keys are checked
    # against the constructors in registry_test.py); these are the other
    # registries schema.py mirrors.
    from speechmodel import datasets, distribute, precision
    from speechmodel.augment.settings import AUGMENTATIONS
    from speechmodel.classical.registry import available_classifiers
    from speechmodel.models import frontends, registry
    from speechmodel.training.optimizers import OPTIMIZERS

    assert S.BACKBONES is registry.BACKBONE_NAMES and S.FRONT_ENDS is frontends.FRONT_END_NAMES
    assert S.DEEP_MODELS is registry.MODEL_NAMES
    assert S.model_keys({"name": "speechmodel", "backbone": "whisper_base"}) is registry.MODEL_CLASSES["front_end"].keys
    assert S.model_keys({"name": "vgg11"}) is registry.MODEL_CLASSES["baseline"].keys
    assert set(S.CLASSICAL_MODELS) == set(available_classifiers())
    assert set(S.PROTOCOLS) == set(datasets.PROTOCOLS)
    assert set(S.AUGMENTATIONS) == set(AUGMENTATIONS)
    assert set(S.OPTIMIZERS) == set(OPTIMIZERS)
    assert set(S.PRECISIONS) == set(precision.POLICIES)
    assert set(S.STRATEGIES) == set(distribute.STRATEGIES)


def test_the_schema_and_the_registries_import_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys; import speechmodel.training.schema, speechmodel.models.registry, "
            "speechmodel.models.frontends; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("key", sorted(S.SCHEMA))
def test_every_key_has_a_type(key):
    config = C.resolve({})
    O.set_key(config, key, 1j)  # no JSON value, so no valid one
    with pytest.raises(D.ConfigError, match=f"^{key.replace('.', '[.]')} must be "):
        S.validate(config, deep=False)


def test_names_model_keys_and_shapes_are_checked_without_tensorflow():
    cases = [
        ({"model": {"name": "alexnt"}}, "did you mean `alexnet`"),
        ({"model": {"backbone": "cnn5"}}, "model.backbone must be one of .*did you mean `cnn4`"),
        ({"model": {"lstm_unit": 8}}, "model.lstm_unit is not a setting of .*did you mean `lstm_units`"),
        ({"model": {"backbone": "whisper_base", "input_size": 227}},
         "model.input_size is not a setting of model 'speechmodel' on the front end"),
        ({"model": {"name": "alexnet", "lstm_units": 8}}, "not a setting of the baseline 'alexnet'"),
        ({"model": {"dense_units": 256}}, "model.dense_units must be a list"),
        ({"dataset": {"name": "ravdes"}}, "unknown corpus .*did you mean `ravdess`"),
        ({"dataset": {"emotions": ["angry", "hapy"]}}, "unknown emotion 'hapy' .*did you mean `happy`"),
        ({"dataset": {"options": {"classes": "4"}}}, "corpus 'ravdess' takes \\['include_song'\\]; unknown: \\['classes'\\]"),
        ({"training": {"optimizer": "adamm"}}, "did you mean `adam`"),
        ({"training": {"strategy": "quantum"}}, "training.strategy must be one of"),
        ({"training": {"mixed_precision": "float8"}}, "training.mixed_precision must be one of"),
        ({"training": {"augment": {"nosie": {}}}}, "did you mean `noise`"),
        ({"protocol": {"name": "cross"}}, "protocol cross .*--test_dataset NAME"),
        ({"features": {"n_mels": 0}}, "features: FeatureConfig: `n_mels`"),
        ({"model": {"backbone": "whisper_base", "speaker_normalization": True},
          "training": {"mode": "end_to_end"}}, "model.speaker_normalization .* needs --mode frozen"),
        ({"model": {"backbone": "whisper_base", "speaker_normalization": "yes"}},
         "model.speaker_normalization must be"),
        ({"model": {"speaker_normalization": True}},
         "model.speaker_normalization is not a setting of model 'speechmodel' on the CNN"),
        ({"model": {"name": "svm"}, "training": {"classical": {"features": "egemap"}}},
         "training.classical.features: Unknown feature set; known: statistics, egemaps, compare"),
        ({"model": {"name": "svm"}, "training": {"classical": {"features": {"feature_set": "compare", "n_mfcc": 9}}}},
         r"training.classical.features: OpenSmileFeatureConfig: unknown keys \['n_mfcc'\]"),
        ({"model": {"name": "svm"}, "training": {"classical": {"speaker_normalization": "yes"}}},
         "training.classical.speaker_normalization must be true or false"),
        ({"model": {"backbone": "whisper_base"}, "training": {"mode": "finetune"}},
         "finetune .*--fine_tune_blocks K"),
        ({"model": {"backbone": "cnn4"}, "training": {"mode": "finetune"}},
         "finetune trains the top blocks of a pretrained front end"),
        ({"model": {"backbone": "whisper_base", "fine_tune_blocks": 2, "speaker_normalization": True},
          "training": {"mode": "finetune"}}, "needs --mode frozen"),
        ({"model": {"backbone": "whisper_base", "fine_tune_blocks": 2},
          "training": {"mode": "finetune", "augment": {"noise": {}}}}, "--augment none"),
        ({"model": {"backbone": "whisper_base", "lora_rank": 4}, "training": {"mode": "frozen"}},
         "lora_rank=4, fine_tune_blocks=0"),
        ({"training": {"frame_mask": 1.0}}, "training.frame_mask must be a finite number >= 0 and < 1"),
    ]
    for override, message in cases:
        with pytest.raises(D.ConfigError, match=message):
            C.resolve(override, deep=False)


def test_model_segment_shape_is_derived_from_the_features():
    # The shape the model is built with comes from the features (the
    # registry derives it); a config that states another one is refused.
    C.resolve({"model": {"backbone": "cnn4", "segment_shape": [64, 64, 3]}})
    with pytest.raises(D.ConfigError, match=r"derived from the features .*\[64, 80, 3\]"):
        C.resolve({"features": {"n_mels": 80}, "model": {"backbone": "cnn4", "segment_shape": [64, 64, 3]}})
    from speechmodel.models.registry import build_model

    model = build_model("speechmodel", num_classes=3, backbone="cnn4", lstm_units=4, attention_units=4,
                        dense_units=[4], feature_config={"n_mels": 40, "segment_frames": 32})
    assert tuple(model.segment_encoder.segment_shape) == (32, 40, 3)


def test_keys_the_run_would_not_use():
    def unused(override):
        return [key for key, _, _ in S.inapplicable(C.resolve(override, deep=False))]

    assert unused({}) == []
    assert unused({"training": {"mode": "frozen", "segment_epochs": 3}}) == ["training.segment_epochs"]
    assert unused({"training": {"mode": "two_stage", "segment_epochs": 3}}) == []
    assert unused({"training": {"embedding_cache": "/tmp/x"}}) == ["training.embedding_cache"]
    assert unused({"training": {"mode": "frozen", "cache": None}}) == ["training.cache"]
    assert unused({"training": {"weight_decay": 0.1}}) == ["training.weight_decay"]
    assert unused({"model": {"name": "svm"}, "training": {"epochs": 3, "seed": 1}}) == ["training.epochs"]
    assert unused({"model": {"name": "alexnet"}, "training": {"mode": "frozen"}}) == ["training.mode"]
    assert unused({"protocol": {"name": "loso", "k": 4}}) == ["protocol.k"]
    tuned = {"backbone": "whisper_base", "fine_tune_blocks": 2}
    assert unused({"model": tuned, "training": {"mode": "finetune", "layer_decay": 0.5,
                                                "frame_mask": 0.1, "warmup_steps": 5}}) == []
    assert unused({"model": tuned, "training": {"mode": "end_to_end", "frame_mask": 0.1,
                                                "encoder_lr_scale": 0.5}}) == ["training.frame_mask"]
    assert unused({"model": {"backbone": "whisper_base"}, "training": {"mode": "frozen", "layer_decay": 0.5}}) == [
        "training.layer_decay"]
    assert unused({"protocol": {"holdout_speakers": ["01"]}}) == ["protocol.holdout_speakers"]
    assert unused({"training": {"mode": "two_stage", "segment_epochs": 0, "augment": {"noise": {}}}}) == [
        "training.augment"]
    # A saved model is fine-tuned as it was built: the config's model keys
    # and features would be replaced.
    assert unused({"training": {"init_from": "fast"}, "model": {"lstm_units": 8},
                   "features": {"n_mels": 40}}) == ["model.lstm_units", "features.n_mels"]
    with pytest.raises(D.ConfigError, match="training.segment_epochs applies to stage 1 of training.mode two_stage"):
        C.resolve({"training": {"mode": "frozen", "segment_epochs": 3}}, strict=True)
    # Every shipped config uses every key it sets.
    for path in sorted((REPO / "configs").glob("*.json")):
        assert S.inapplicable(C.load_config(path, deep=False)) == [], path

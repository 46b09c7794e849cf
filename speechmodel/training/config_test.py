import json

import pytest

from speechmodel.training import config as C
from tests.paths import REPO


def test_every_shipped_config_resolves():
    for path in sorted((REPO / "configs").glob("*.json")):
        resolved = C.load_config(path)
        # configs/<dataset>.json is train.py's default for --dataset; the
        # others are named <dataset>_<variant> (or name their corpora).
        assert path.stem.split("_")[0] in resolved["dataset"]["name"].split(",") or path.stem == "default"
        assert set(resolved) == set(C.DEFAULTS)


def test_defaults_overrides_and_unknown_keys():
    resolved = C.resolve({"training": {"epochs": 3}, "model": {"name": "svm"}})
    assert resolved["training"]["epochs"] == 3
    assert resolved["training"]["batch_size"] == C.DEFAULTS["training"]["batch_size"]
    assert resolved["model"] == {"name": "svm", "weights": None}
    # A classical model's parameters are training.classical.params: a model
    # key it would ignore is refused, naming its keys.
    with pytest.raises(C.ConfigError, match="model.C is not a setting of the classical model 'svm'"):
        C.resolve({"model": {"name": "svm", "C": 1.0}})
    with pytest.raises(C.ConfigError, match="Received: training.epoch=3"):
        C.resolve({"training": {"epoch": 3}})
    with pytest.raises(C.ConfigError, match="Received: mode='three_stage'"):
        C.resolve({"training": {"mode": "three_stage"}})
    with pytest.raises(C.ConfigError, match="training.augment"):
        C.resolve({"training": {"augment": {"noise": {"snr_db": [20, 5]}}}})
    with pytest.raises(C.ConfigError, match="Received: segment_schedule='step'"):
        C.resolve({"training": {"segment_schedule": "step"}})


def test_config_files_are_data(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{'training': __import__('os').system('echo pwned')}")
    with pytest.raises(C.ConfigError, match="not valid JSON"):
        C.load_config(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(C.ConfigError, match="JSON object"):
        C.load_config(path)


def test_output_dir_is_stable_for_the_same_experiment():
    a = C.resolve({"training": {"epochs": 3}})
    b = C.resolve({"training": {"epochs": 3}, "dataset": {"data_dir": "/elsewhere"}})
    c = C.resolve({"training": {"epochs": 4}})
    assert C.default_output_dir(a) == C.default_output_dir(b) != C.default_output_dir(c)


def test_augment_flag():
    configured = {"noise": {"snr_db": [5, 10]}}
    assert C.parse_augment("noise,mixup", configured) == {"noise": {"snr_db": [5, 10]}, "mixup": {}}
    assert C.parse_augment("none", configured) == {}
    with pytest.raises(C.ConfigError, match="Received: augment=reverb"):
        C.parse_augment("reverb", {})


def test_names_and_keys_match_the_registries():
    # config.py lists the names without importing the models (TensorFlow);
    # these are the registries it mirrors.
    import inspect

    from speechmodel import datasets, distribute, precision
    from speechmodel.augment import AUGMENTATIONS
    from speechmodel.classical.classifiers import available_classifiers
    from speechmodel.models import frontends, registry
    from speechmodel.models.audio_speech_model import AudioSpeechModel
    from speechmodel.models.backbones import BACKBONE_NAMES
    from speechmodel.models.segment_classifier import SegmentClassifier
    from speechmodel.models.speech_model import SpeechModel
    from speechmodel.training.optimizers import OPTIMIZERS

    assert set(C.BACKBONES) == set(BACKBONE_NAMES)
    assert set(C.FRONT_ENDS) == set(frontends.FRONT_END_NAMES)
    assert set(C.DEEP_MODELS) == set(registry.MODEL_NAMES)
    assert set(C.CLASSICAL_MODELS) == set(available_classifiers())
    assert set(C.PROTOCOLS) == set(datasets.PROTOCOLS)
    assert set(C.AUGMENTATIONS) == set(AUGMENTATIONS)
    assert set(C.OPTIMIZERS) == set(OPTIMIZERS)
    assert set(C.PRECISIONS) == set(precision.POLICIES)
    assert set(C.STRATEGIES) == set(distribute.STRATEGIES)
    accepted = lambda cls: set(registry._accepted(cls)) - {"num_classes"}  # noqa: E731
    assert set(C.SPEECHMODEL_KEYS) == accepted(SpeechModel)
    assert set(C.BASELINE_KEYS) == accepted(SegmentClassifier)
    head = {k for k in inspect.signature(AudioSpeechModel.__init__).parameters
            if k not in ("self", "num_classes", "embedder", "kwargs")}
    assert set(C.FRONT_END_KEYS) == head | {"name", "backbone", "weights", "fine_tune_blocks"}
    assert "speaker_normalization" in head


def test_dotted_overrides():
    assert C.parse_override("training.segment_epochs=4") == ("training.segment_epochs", 4)
    assert C.parse_override("model.dense_units=[256, 128]") == ("model.dense_units", [256, 128])
    assert C.parse_override("training.init_from=null") == ("training.init_from", None)
    assert C.parse_override("training.optimizer=adamw") == ("training.optimizer", "adamw")
    assert C.parse_override("output_dir=runs/a=b") == ("output_dir", "runs/a=b")
    with pytest.raises(C.ConfigError, match="--set takes KEY=VALUE"):
        C.parse_override("training.epochs")
    config = C.resolve({})
    C.set_key(config, "training.segment_epochs", 4)
    C.set_key(config, "training.augment.noise.p", 0.5)  # free sections are created
    C.set_key(config, "dataset.options.emotion_map", {"joy": "happy"})
    C.set_key(config, "model.lstm_units", 8)
    assert config["training"]["segment_epochs"] == 4 and config["model"]["lstm_units"] == 8
    assert config["training"]["augment"] == {"noise": {"p": 0.5}}
    for key, closest in [("training.segment_epoch", "training.segment_epochs"),
                         ("model.lstm_unit", "model.lstm_units"),
                         ("features.nmels", "features.n_mels"),
                         ("training.augment.nois.p", "training.augment.noise")]:
        with pytest.raises(C.ConfigError, match=f"did you mean `{closest}`"):
            C.set_key(config, key, 1)
    with pytest.raises(C.ConfigError, match="Unknown config key `bogus.key`"):
        C.set_key(config, "bogus.key", 1)
    with pytest.raises(C.ConfigError, match="`training.epochs.x` .did you mean `training.epochs`"):
        C.set_key(config, "training.epochs.x", 1)
    C.set_key(config, "training.augment.noise", 1)
    with pytest.raises(C.ConfigError, match="`training.augment.noise` is a value, not a section"):
        C.set_key(config, "training.augment.noise.p", 1)
    with pytest.raises(C.ConfigError, match="Empty part"):
        C.set_key(config, "training..epochs", 1)


@pytest.mark.parametrize("key", sorted(C.SCHEMA))
def test_every_key_has_a_type(key):
    config = C.resolve({})
    C.set_key(config, key, 1j)  # no JSON value, so no valid one
    with pytest.raises(C.ConfigError, match=f"^{key.replace('.', '[.]')} must be "):
        C.validate(config, deep=False)


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
    ]
    for override, message in cases:
        with pytest.raises(C.ConfigError, match=message):
            C.resolve(override, deep=False)


def test_model_segment_shape_is_derived_from_the_features():
    # The shape the model is built with comes from the features (the
    # registry derives it); a config that states another one is refused.
    C.resolve({"model": {"backbone": "cnn4", "segment_shape": [64, 64, 3]}})
    with pytest.raises(C.ConfigError, match=r"derived from the features .*\[64, 80, 3\]"):
        C.resolve({"features": {"n_mels": 80}, "model": {"backbone": "cnn4", "segment_shape": [64, 64, 3]}})
    from speechmodel.models.registry import build_model

    model = build_model("speechmodel", num_classes=3, backbone="cnn4", lstm_units=4, attention_units=4,
                        dense_units=[4], feature_config={"n_mels": 40, "segment_frames": 32})
    assert tuple(model.segment_encoder.segment_shape) == (32, 40, 3)


def test_keys_the_run_would_not_use():
    def unused(override):
        return [key for key, _, _ in C.inapplicable(C.resolve(override, deep=False))]

    assert unused({}) == []
    assert unused({"training": {"mode": "frozen", "segment_epochs": 3}}) == ["training.segment_epochs"]
    assert unused({"training": {"mode": "two_stage", "segment_epochs": 3}}) == []
    assert unused({"training": {"embedding_cache": "/tmp/x"}}) == ["training.embedding_cache"]
    assert unused({"training": {"mode": "frozen", "cache": None}}) == ["training.cache"]
    assert unused({"training": {"weight_decay": 0.1}}) == ["training.weight_decay"]
    assert unused({"model": {"name": "svm"}, "training": {"epochs": 3, "seed": 1}}) == ["training.epochs"]
    assert unused({"model": {"name": "alexnet"}, "training": {"mode": "frozen"}}) == ["training.mode"]
    assert unused({"protocol": {"name": "loso", "k": 4}}) == ["protocol.k"]
    assert unused({"protocol": {"holdout_speakers": ["01"]}}) == ["protocol.holdout_speakers"]
    assert unused({"training": {"mode": "two_stage", "segment_epochs": 0, "augment": {"noise": {}}}}) == [
        "training.augment"]
    # A saved model is fine-tuned as it was built: the config's model keys
    # and features would be replaced.
    assert unused({"training": {"init_from": "fast"}, "model": {"lstm_units": 8},
                   "features": {"n_mels": 40}}) == ["model.lstm_units", "features.n_mels"]
    with pytest.raises(C.ConfigError, match="training.segment_epochs applies to stage 1 of training.mode two_stage"):
        C.resolve({"training": {"mode": "frozen", "segment_epochs": 3}}, strict=True)
    # Every shipped config uses every key it sets.
    for path in sorted((REPO / "configs").glob("*.json")):
        assert C.inapplicable(C.load_config(path, deep=False)) == [], path


def test_new_keys_keep_the_digest_of_earlier_runs():
    # The run directory of `train.py --dataset ravdess --epochs 30` before
    # training.init_from and training.final_model existed: the same command
    # must find (and resume) it.
    config = C.load_config(REPO / "configs" / "ravdess.json", deep=False)
    config["training"]["epochs"] = 30
    assert C.digest(config) == "b5496a0d9f"
    assert C.digest(dict(config, training=dict(config["training"], final_model=False))) == "b5496a0d9f"
    assert C.digest(dict(config, training=dict(config["training"], init_from="fast"))) != "b5496a0d9f"


def test_files_and_folders_are_checked(tmp_path):
    config = C.resolve({}, deep=False)
    C.check_paths(config, output_dir=str(tmp_path / "new" / "run"))
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(C.ConfigError, match="is a file, not a folder"):
        C.check_paths(config, output_dir=str(afile / "run"))
    with pytest.raises(C.ConfigError, match="model.weights .*no such file"):
        C.check_paths(C.resolve({"model": {"backbone": "cnn4", "weights": str(tmp_path / "w.h5")}}))
    for init, why in [(tmp_path / "missing.keras", "no such file"), (tmp_path, "a folder without model.keras"),
                      (afile, "not a .keras file")]:
        with pytest.raises(C.ConfigError, match=f"training.init_from .*{why}"):
            C.check_paths(C.resolve({"training": {"init_from": str(init)}}, deep=False))
    C.check_paths(C.resolve({"training": {"init_from": "fast"}}, deep=False))
    manifest = tmp_path / "latin1.csv"
    manifest.write_bytes("path,emotion,speaker\nété.wav,happy,s1\n".encode("latin-1"))
    with pytest.raises(C.ConfigError, match="is not UTF-8 text"):
        C.check_paths(C.resolve({"dataset": {"name": "csv", "data_dir": str(manifest)}}, deep=False))


def test_recipe_for_a_corpus_without_a_config():
    recipe = C.recipe_config()
    ravdess = C.load_config(REPO / "configs" / "ravdess.json")
    for section in ("features", "model", "training"):
        assert recipe[section] == ravdess[section]
    assert recipe["model"]["backbone"] == "whisper_base" and recipe["training"]["mode"] == "frozen"
    assert C.default_config_path("folder") is None and C.default_config_path("csv") is None

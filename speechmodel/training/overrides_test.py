import pytest

from speechmodel.training import config as C
from speechmodel.training import defaults as D
from speechmodel.training import overrides as O


def test_augment_flag():
    configured = {"noise": {"snr_db": [5, 10]}}
    assert O.parse_augment("noise,mixup", configured) == {"noise": {"snr_db": [5, 10]}, "mixup": {}}
    assert O.parse_augment("none", configured) == {}
    with pytest.raises(D.ConfigError, match="Received: augment=reverb"):
        O.parse_augment("reverb", {})


def test_dotted_overrides():
    assert O.parse_override("training.segment_epochs=4") == ("training.segment_epochs", 4)
    assert O.parse_override("model.dense_units=[256, 128]") == ("model.dense_units", [256, 128])
    assert O.parse_override("training.init_from=null") == ("training.init_from", None)
    assert O.parse_override("training.optimizer=adamw") == ("training.optimizer", "adamw")
    assert O.parse_override("output_dir=runs/a=b") == ("output_dir", "runs/a=b")
    with pytest.raises(D.ConfigError, match="--set takes KEY=VALUE"):
        O.parse_override("training.epochs")
    config = C.resolve({})
    O.set_key(config, "training.segment_epochs", 4)
    O.set_key(config, "training.augment.noise.p", 0.5)  # free sections are created
    O.set_key(config, "dataset.options.emotion_map", {"joy": "happy"})
    O.set_key(config, "model.lstm_units", 8)
    assert config["training"]["segment_epochs"] == 4 and config["model"]["lstm_units"] == 8
    assert config["training"]["augment"] == {"noise": {"p": 0.5}}
    for key, closest in [("training.segment_epoch", "training.segment_epochs"),
                         ("model.lstm_unit", "model.lstm_units"),
                         ("features.nmels", "features.n_mels"),
                         ("training.augment.nois.p", "training.augment.noise")]:
        with pytest.raises(D.ConfigError, match=f"did you mean `{closest}`"):
            O.set_key(config, key, 1)
    with pytest.raises(D.ConfigError, match="Unknown config key `bogus.key`"):
        O.set_key(config, "bogus.key", 1)
    with pytest.raises(D.ConfigError, match="`training.epochs.x` .did you mean `training.epochs`"):
        O.set_key(config, "training.epochs.x", 1)
    O.set_key(config, "training.augment.noise", 1)
    with pytest.raises(D.ConfigError, match="`training.augment.noise` is a value, not a section"):
        O.set_key(config, "training.augment.noise.p", 1)
    with pytest.raises(D.ConfigError, match="Empty part"):
        O.set_key(config, "training..epochs", 1)

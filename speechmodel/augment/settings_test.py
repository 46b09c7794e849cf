import json

import pytest

from speechmodel.augment.settings import DEFAULTS, Augmentation


def test_config_defaults_round_trip_through_json():
    aug = Augmentation.from_dict({"noise": {}, "speed": {}, "pitch": {}, "specaugment": {}, "mixup": {}})
    resolved = aug.to_dict()
    assert resolved == {k: dict(v) for k, v in DEFAULTS.items()}
    assert Augmentation.from_dict(json.loads(json.dumps(resolved))) == aug
    assert Augmentation.from_dict({}).to_dict() == {}
    assert Augmentation.from_dict({"noise": None, "pitch": {"p": 0}}).active == []
    fixed = Augmentation.from_dict({"noise": {"snr_db": 10, "kind": "pink"}, "speed": {"factors": 1.1}})
    assert fixed.noise.snr_db == (10.0, 10.0) and fixed.noise.kind == ("pink",)
    assert fixed.speed.factors == (1.1,)


@pytest.mark.parametrize(
    "config, quoted",
    [
        ({"noise": {"snr_db": [20, 5]}}, "Received: snr_db=[20, 5]"),
        ({"noise": {"snr_db": "loud"}}, "Received: snr_db='loud'"),
        ({"noise": {"p": 1.5}}, "Received: p=1.5"),
        ({"noise": {"p": True}}, "Received: p=True"),
        ({"noise": {"kind": ["white", "purple"]}}, "Received: kind=['white', 'purple']"),
        ({"noise": {"kind": []}}, "Received: kind=[]"),
        ({"noise": {"noise_files": "a.wav"}}, "Received: noise_files='a.wav'"),
        ({"noise": {"snr": 10}}, "unknown keys ['snr']"),
        ({"speed": {"factors": [0.9, 0]}}, "Received: factors=[0.9, 0]"),
        ({"speed": {"factors": []}}, "Received: factors=[]"),
        ({"pitch": {"semitones": [-30, 2]}}, "Received: semitones=[-30, 2]"),
        ({"specaugment": {"freq_masks": -1}}, "Received: freq_masks=-1"),
        ({"specaugment": {"time_width": 2.5}}, "Received: time_width=2.5"),
        ({"mixup": {"alpha": 0}}, "Received: alpha=0"),
        ({"nosie": {}}, "unknown augmentations ['nosie']"),
        ({"noise": [5, 20]}, "Received: noise=[5, 20]"),
        (["noise"], "Received: ['noise']"),
    ],
)
def test_bad_configs_raise_value_error_quoting_the_value(config, quoted):
    with pytest.raises(ValueError) as info:
        Augmentation.from_dict(config)
    assert quoted in str(info.value)

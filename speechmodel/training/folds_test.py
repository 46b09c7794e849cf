from speechmodel.datasets.protocols import Fold
from speechmodel.training.folds import small_validation


def _fold(val_speakers, val_clips, name="fold1"):
    return Fold(name=name, train=tuple(range(100)), val=tuple(range(100, 100 + val_clips)),
                test=(), train_speakers=("a", "b"), val_speakers=tuple(val_speakers),
                test_speakers=())


def test_one_validation_speaker_is_too_few_to_choose_the_epoch():
    warning = small_validation(_fold(["s1"], 8), num_classes=4)
    assert warning.startswith("fold1: the epoch is chosen on 1 validation speaker (8 clips for 4 emotions)")
    assert "--set protocol.val_speakers=N" in warning


def test_few_clips_per_emotion_are_too_few_even_from_several_speakers():
    assert "2 validation speakers (19 clips for 4 emotions)" in small_validation(_fold(["s1", "s2"], 19), 4)
    assert small_validation(_fold(["s1", "s2"], 20), 4) is None


def test_no_validation_is_no_warning():
    assert small_validation(_fold([], 0, name="final"), 4) is None

import os
import pickle

import pytest

from speechmodel import audio
from speechmodel.audio.errors import AudioError, path_problem


def test_path_problem_says_what_is_wrong_or_nothing(tmp_path):
    good = tmp_path / "a.wav"
    good.write_bytes(b"RIFF")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    link = tmp_path / "link.wav"
    os.symlink(tmp_path / "gone.wav", link)
    assert path_problem(good) is None
    for path, kind, words in [
        (tmp_path / "missing.wav", "missing", "file not found"),
        (link, "missing", "broken symbolic link"),
        (tmp_path, "not_regular", "is a directory"),
        (empty, "empty", "0 bytes"),
    ]:
        problem = path_problem(path)
        assert (problem.kind, problem.path) == (kind, str(path)) and words in problem.reason


def test_audio_error_names_the_file_checks_its_kind_and_pickles():
    error = AudioError("x.wav", "file not found", kind="missing")
    assert str(error) == "x.wav: file not found"
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.path, again.reason, again.kind) == (AudioError, "x.wav", "file not found", "missing")
    with pytest.raises(ValueError, match="Received: kind=lost"):
        AudioError("x.wav", "?", kind="lost")
    assert audio.AudioError is AudioError  # the package's public name, one class

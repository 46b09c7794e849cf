import os

import pytest

from speechmodel.inference import writing


def test_write_text_is_atomic_with_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        writing.write_text("hello\n", tmp_path / "sub" / "out.txt")
    finally:
        os.umask(old)
    assert (tmp_path / "sub" / "out.txt").read_text() == "hello\n"
    assert os.stat(tmp_path / "sub" / "out.txt").st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path / "sub") == ["out.txt"]


def test_write_text_replaces_and_keeps_file_names_as_their_bytes(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old results\n")
    name = os.fsdecode(b"d\xe9j\xe0-vu.wav")  # A Latin-1 file name: not UTF-8.
    writing.write_text(f"{name}\n", target)
    assert target.read_bytes() == b"d\xe9j\xe0-vu.wav\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_encode_text_falls_back_to_utf8_for_other_encodings():
    assert writing.encode_text("caf\u00e9", "latin-1") == b"caf\xe9"
    assert writing.encode_text("\u2603", "ascii") == "\u2603".encode("utf-8")
    assert writing.encode_text("x", "no-such-codec") == b"x"


def test_write_bytes_without_overwrite_never_replaces_a_file(tmp_path):
    mine = tmp_path / "plots" / "voice.png"
    writing.write_bytes(b"first", mine, overwrite=False)  # Creates the folder.
    assert mine.read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        writing.write_bytes(b"second", mine, overwrite=False)
    assert mine.read_bytes() == b"first"
    assert os.listdir(tmp_path / "plots") == ["voice.png"]  # No temporary file left.
    writing.write_bytes(b"third", mine)  # overwrite=True (the default) replaces.
    assert mine.read_bytes() == b"third"

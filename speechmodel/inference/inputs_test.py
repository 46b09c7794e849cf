import os

import pytest

from speechmodel.inference import inputs as I


def test_collect_inputs_walks_directories_expands_patterns_and_reads_lists(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/z.ogg", "a/readme.txt", "a/b/w.aif", "top.mp3"):
        (tmp_path / name).write_bytes(b"?")
    (tmp_path / "empty_dir").mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\n\na/readme.txt\n  top.mp3  \nmissing.wav\n")
    got = I.collect_inputs(
        [str(tmp_path / "a"), str(tmp_path / "**" / "*.ogg"), str(tmp_path / "nomatch*.wav"),
         str(tmp_path / "empty_dir"), str(tmp_path / "a" / "x.wav")],
        list_files=[str(listing)],
    )
    rel = [os.path.relpath(p, tmp_path) for p in got.paths]
    # Directory walk: audio extensions only, any case, sorted, recursive; the
    # pattern's match and the repeated x.wav are not listed twice; the list
    # file's entries are relative to it, and its non-audio file is kept (it
    # is given explicitly, so it will be reported, not ignored).
    assert rel == ["a/x.wav", "a/b/w.aif", "a/b/y.FLAC", "a/b/z.ogg", "a/readme.txt", "top.mp3"]
    reasons = {os.path.relpath(f.file, tmp_path): f.reason for f in got.failures}
    assert reasons == {
        "nomatch*.wav": "no file matches this pattern",
        "empty_dir": reasons["empty_dir"],
        "missing.wav": "file not found",
    }
    assert "no audio files" in reasons["empty_dir"]


def test_missing_list_file_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="list file not found. Received: --list="):
        I.collect_inputs([], list_files=[str(tmp_path / "nope.txt")])


def test_read_list_file_skips_comments_and_resolves_relative_paths(tmp_path):
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "files.txt"
    listing.write_text("# recordings\n\n  one.wav \nsub/two.flac\n/abs/three.ogg\n~/four.mp3\n")
    assert I.read_list_file(listing) == [
        str(tmp_path / "lists" / "one.wav"),
        str(tmp_path / "lists" / "sub" / "two.flac"),
        "/abs/three.ogg",
        os.path.expanduser("~/four.mp3"),
    ]


def test_a_single_path_is_one_input_and_every_file_is_listed_once(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("d/a.wav", "d/b.opus"):
        (tmp_path / name).write_bytes(b"?")
    got = I.collect_inputs(str(tmp_path / "d"))
    assert [os.path.basename(p) for p in got.paths] == ["a.wav", "b.opus"] and got.failures == []
    again = I.collect_inputs([str(tmp_path / "d" / "a.wav"), str(tmp_path / "d")])
    assert [os.path.basename(p) for p in again.paths] == ["a.wav", "b.opus"]

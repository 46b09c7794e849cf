import logging
import os

import numpy as np
import pytest

from speechmodel.datasets.manifest import (
    CorpusError,
    Manifest,
    Problem,
    Utterance,
    natural_key,
    normalize_gender,
)


def _utt(i, emotion="angry", speaker="1", corpus="ravdess", gender="male", **kw):
    return Utterance(
        path=f"/data/c/{speaker}/{i}.wav",
        corpus=corpus,
        emotion=emotion,
        label=emotion[:3],
        speaker=speaker,
        gender=gender,
        **kw,
    )


def _small():
    return Manifest(
        [
            _utt(0, "angry", "2", gender="female"),
            _utt(1, "neutral", "10"),
            _utt(2, "sad", "2", gender="female"),
            _utt(3, "angry", "10"),
            _utt(
                4,
                "happy",
                "1",
                session="s1",
                text="t1",
                intensity="strong",
                extra=(("k", "v"), ("a", "b,c")),
            ),
        ],
        [Problem("/data/c/bad.wav", "name does not follow the scheme")],
        {"song part": 3},
        name="test",
    )


def test_utterance_validates_fields():
    with pytest.raises(ValueError, match="emotion='anger'"):
        Utterance(path="/a.wav", corpus="x", emotion="anger", label="a", speaker="1")
    with pytest.raises(ValueError, match="speaker=''"):
        Utterance(path="/a.wav", corpus="x", emotion="sad", label="a", speaker="")
    with pytest.raises(ValueError, match="gender='M'"):
        Utterance(
            path="/a.wav", corpus="x", emotion="sad", label="a", speaker="1", gender="M"
        )
    with pytest.raises(ValueError, match="pairs of strings"):
        Utterance(
            path="/a.wav",
            corpus="x",
            emotion="sad",
            label="a",
            speaker="1",
            extra=(("k", 1),),
        )
    u = Utterance(
        path="/a.wav",
        corpus="x",
        emotion="sad",
        label="a",
        speaker="1",
        extra=[["k", "v"]],
    )
    assert u.extra == (("k", "v"),)
    assert u.get("k") == "v" and u.get("missing", "d") == "d"
    hash(u)  # frozen and hashable


def test_container_protocol_and_indexing():
    m = _small()
    assert len(m) == 5
    assert isinstance(m[0], Utterance)
    assert [u.path for u in m[1:3]] == [m[1].path, m[2].path]
    sub = m[np.array([4, 0])]
    assert isinstance(sub, Manifest) and [u.path for u in sub] == [m[4].path, m[0].path]
    assert sub.problems == m.problems and sub.excluded == m.excluded
    mask = np.array([True, False, False, True, False])
    assert [u.path for u in m[mask]] == [m[0].path, m[3].path]
    assert len(m[[]]) == 0
    with pytest.raises(IndexError):
        m[[7]]
    with pytest.raises(IndexError):
        m[np.array([True, False])]


def test_speakers_emotions_counts():
    m = _small()
    assert m.speakers() == ["1", "2", "10"]  # natural order
    assert m.emotions() == ["neutral", "happy", "sad", "angry"]  # canonical order
    assert m.counts() == {"neutral": 1, "happy": 1, "sad": 1, "angry": 2}
    assert list(m.counts("emotion")) == ["neutral", "happy", "sad", "angry"]
    assert m.counts("speaker") == {"1": 1, "2": 2, "10": 2}
    assert m.counts("session") == {"s1": 1, None: 4}
    assert m.counts(("speaker", "emotion"))[("10", "angry")] == 1
    assert m.speaker_genders() == {"2": "female", "10": "male", "1": "male"}
    with pytest.raises(ValueError, match="by='path'"):
        m.counts("path")


def test_select():
    m = _small()
    assert [u.emotion for u in m.select(emotions=["anger", "sad"])] == [
        "angry",
        "sad",
        "angry",
    ]
    assert {u.speaker for u in m.select(speakers=["10"])} == {"10"}
    assert len(m.select(emotions="happy", speakers="2")) == 0
    with pytest.raises(ValueError, match=r"speakers=\['99'\].*Available"):
        m.select(speakers=["99"])
    with pytest.raises(ValueError, match="Valid names"):
        m.select(emotions=["elated"])


def test_label_indices():
    m = _small().select(emotions=["angry", "sad"])
    np.testing.assert_array_equal(m.label_indices(["sad", "angry"]), [1, 0, 1])
    with pytest.raises(ValueError, match="select"):
        _small().label_indices(["sad", "angry"])


def test_csv_round_trip(tmp_path):
    m = _small()
    path = tmp_path / "sub" / "manifest.csv"
    m.to_csv(path)
    back = Manifest.from_csv(path)
    assert back.utterances == m.utterances
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")]  # no temp left
    # The mode of every other file (0666 minus the umask), not mkstemp's 0600.
    from speechmodel import fileio

    assert os.stat(path).st_mode & 0o777 == fileio.default_mode()


def test_csv_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    import csv

    path = tmp_path / "manifest.csv"
    _small().select(emotions=["sad"]).to_csv(path)
    before = path.read_bytes()

    class DiesOnTheSecondRow:
        def __init__(self, f):
            self.writer, self.rows = real_writer(f), 0

        def writerow(self, row):
            self.rows += 1
            if self.rows == 3:
                raise OSError(28, "No space left on device")
            self.writer.writerow(row)

    real_writer = csv.writer
    monkeypatch.setattr(csv, "writer", DiesOnTheSecondRow)
    with pytest.raises(OSError, match="No space left"):
        _small().to_csv(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["manifest.csv"]


def test_from_csv_relative_paths_and_errors(tmp_path):
    (tmp_path / "m.csv").write_text("path,emotion,speaker\na/x.wav,sad,7\n")
    m = Manifest.from_csv(tmp_path / "m.csv")
    assert m[0].path == str(tmp_path / "a" / "x.wav")
    assert m[0].corpus == "csv" and m[0].label == "sad"
    (tmp_path / "bad.csv").write_text("path,emotion,speaker\nx.wav,elated,7\n")
    with pytest.raises(ValueError, match=r"bad.csv, line 2: .*elated"):
        Manifest.from_csv(tmp_path / "bad.csv")
    (tmp_path / "cols.csv").write_text("file,emotion\nx.wav,sad\n")
    with pytest.raises(ValueError, match=r"missing columns \['path', 'speaker'\]"):
        Manifest.from_csv(tmp_path / "cols.csv")


def test_multi_corpus_speaker_ids_and_concat():
    a = Manifest([_utt(0, speaker="01"), _utt(1, speaker="02")], name="a")
    b = Manifest(
        [_utt(2, speaker="01", corpus="emodb")],
        [Problem("/p", "r")],
        {"x": 1},
        name="b",
    )
    both = Manifest.concat([a, b])
    assert both.speakers() == ["emodb/01", "ravdess/01", "ravdess/02"]
    assert both.select(speakers=["emodb/01"])[0].corpus == "emodb"
    assert both.problems == (Problem("/p", "r"),)
    assert both.excluded == {"b: x": 1}
    with pytest.raises(ValueError, match="same file"):
        Manifest.concat([a, a])


def test_fingerprint_survives_moving_not_relabelling():
    m = _small()
    moved = Manifest(
        [
            Utterance(
                **{**u.__dict__, "path": u.path.replace("/data/c", "/elsewhere/copy")}
            )
            for u in m
        ]
    )
    assert moved.fingerprint() == m.fingerprint()
    relabelled = Manifest(
        [Utterance(**{**m[0].__dict__, "emotion": "sad"})] + list(m)[1:]
    )
    assert relabelled.fingerprint() != m.fingerprint()
    assert m[::-1].fingerprint() != m.fingerprint()


def test_summary_lists_counts_exclusions_problems():
    text = _small().summary()
    assert "test: 5 utterances, 3 speakers, 4 emotions" in text
    assert "angry 2" in text
    assert "excluded: 3 (song part)" in text
    assert "problems: 1" in text and "/data/c/bad.wav: name does not follow" in text


def test_corpus_error_message_and_type():
    err = CorpusError("emodb", "/x", expected="a wav/ folder", found="nothing")
    assert isinstance(err, ValueError)
    assert err.corpus == "emodb"
    assert "/x does not look like the emodb corpus" in str(err)
    assert "Expected: a wav/ folder" in str(err) and "Found: nothing" in str(err)


def test_natural_key_and_gender():
    assert sorted(["10", "9", "a2", "a10"], key=natural_key) == ["9", "10", "a2", "a10"]
    assert normalize_gender("F") == "female"
    assert normalize_gender(" Male ") == "male"
    assert normalize_gender("") is None
    with pytest.raises(ValueError, match="'x'"):
        normalize_gender("x")


def test_collector_logs_one_line(tmp_path, caplog):
    from speechmodel.datasets.manifest import Collector

    c = Collector("demo")
    c.add(_utt(0))
    c.add(_utt(0))  # same path: duplicate
    with caplog.at_level(logging.INFO, logger="speechmodel.datasets.manifest"):
        m = c.manifest()
    assert len(m) == 1 and "duplicate of" in m.problems[0].reason
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and "1 files with problems" in lines[0]


def test_expected_count_flags_incomplete_corpus(caplog):
    from speechmodel.datasets.manifest import Collector, log_summary

    complete = Manifest([_utt(0), _utt(1)], expected=2)
    assert not complete.incomplete() and "WARNING" not in complete.summary()
    partial = Manifest([_utt(0)], expected=2)
    assert partial.incomplete()
    assert "complete corpus has 2 utterances" in partial.summary()
    with caplog.at_level(logging.WARNING, logger="speechmodel.datasets.manifest"):
        log_summary(partial)
    assert "the complete corpus has 2" in caplog.records[-1].getMessage()
    # Subsets are smaller on purpose.
    assert (
        complete[:1].expected is None
        and complete.select(emotions=["angry"]).expected is None
    )
    assert Collector("x").manifest(expected=3).incomplete()


def test_scan_audio_follows_links_once_and_counts_hidden(tmp_path):
    from speechmodel.datasets.manifest import Collector, scan_audio

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.wav").write_bytes(b"")
    (tmp_path / "real" / "._a.wav").write_bytes(b"")
    (tmp_path / "real" / "b.txt").write_bytes(b"")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "c.flac").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "loop").symlink_to(tmp_path, target_is_directory=True)
    c = Collector("x")
    found = scan_audio(tmp_path, c)
    # The linked folder is read once (through "link"), the loop is cut.
    assert [os.path.relpath(f, tmp_path) for f in found] == [os.path.join("link", "a.wav")]
    assert sum(c.excluded.values()) == 2  # ._a.wav (read once) and .cache/c.flac


def test_name_scan_yields_parsed_reports_rest_in_order(tmp_path):
    import re

    from speechmodel.datasets.manifest import Collector, NameScan

    pattern = re.compile(r"^([a-z])(\d)$")

    def parse_name(stem):
        match = pattern.match(stem)
        if not match:
            raise ValueError("name does not follow the demo scheme")
        if match.group(1) == "x":
            raise ValueError("unknown code 'x'")
        return {"code": match.group(1)}

    c = Collector("demo")
    names = NameScan(["/d/bad.wav", "/d/a1.wav", "/d/x2.wav"], c, parse_name, pattern)
    assert not names.matched  # nothing read yet: the scan is lazy
    got = []
    for path, stem, fields in names:
        # The problem of bad.wav is recorded before a1 is yielded.
        assert [p.path for p in c.problems] == ["/d/bad.wav"]
        got.append((path, stem, fields))
    assert got == [("/d/a1.wav", "a1", {"code": "a"})]
    assert c.problems == [
        Problem("/d/bad.wav", "name does not follow the demo scheme"),
        Problem("/d/x2.wav", "unknown code 'x'"),
    ]
    assert names.parsed and names.near_miss and names.matched

    # Only a rejected name of the right shape: still this corpus.
    near = NameScan(["/d/x1.wav"], Collector("demo"), parse_name, pattern)
    assert list(near) == [] and near.near_miss and near.matched
    # Nothing of the right shape: not this corpus.
    other = NameScan(["/d/a.wav", "/d/b.wav"], Collector("demo"), parse_name, pattern)
    assert list(other) == [] and not other.matched
    err = other.no_match_error(str(tmp_path), "files like a1.wav", "DEMO")
    assert isinstance(err, CorpusError) and err.corpus == "demo"
    assert err.found == (
        "2 audio files, none named like DEMO; top level: an empty directory"
    )


def test_file_names_that_are_not_utf8_round_trip_through_the_csv(tmp_path):
    from speechmodel.datasets.manifest import Manifest, Utterance

    name = os.fsdecode(b"caf\xe9-angry.wav")  # Latin-1 bytes: a surrogate escape
    manifest = Manifest([Utterance(path=str(tmp_path / name), corpus="folder",
                                  emotion="angry", label="angry", speaker="s1")])
    manifest.to_csv(tmp_path / "manifest.csv")
    assert b"caf\xe9-angry.wav" in (tmp_path / "manifest.csv").read_bytes()
    again = Manifest.from_csv(tmp_path / "manifest.csv")
    assert [u.path for u in again] == [str(tmp_path / name)]


def test_find_by_stem_prefers_the_named_file_then_the_one_other_encoding(tmp_path):
    from speechmodel.datasets.manifest import find_by_stem, stem_index

    for name in ("a.wav", "a.opus", "b.opus", "c.flac", "c.ogg", "sub/a.mp3"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    index = stem_index(str(p) for p in sorted(tmp_path.rglob("*.*")))
    named = str(tmp_path / "a.wav")
    assert find_by_stem(named, index) == (named, [str(tmp_path / "a.opus")])  # the other folder's "a" is not
    assert find_by_stem(str(tmp_path / "b.wav"), index) == (str(tmp_path / "b.opus"), [str(tmp_path / "b.opus")])
    path, others = find_by_stem(str(tmp_path / "c.wav"), index)
    assert path is None and sorted(others) == [str(tmp_path / "c.flac"), str(tmp_path / "c.ogg")]
    assert find_by_stem(str(tmp_path / "d.wav"), index) == (None, [])

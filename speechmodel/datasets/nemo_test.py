import os
import time
from pathlib import Path

import numpy as np
import pytest

from speechmodel import datasets
from speechmodel.datasets.manifest import CorpusError, Manifest
from speechmodel.datasets.nemo import load_nemo, parse_name
from tests.paths import nemo_dir

HEADER = "file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage"


def _row(file_id, emotion=None, speaker=None, gender="female", age="27", text="Ala ma kota."):
    """A data.tsv line as the official file writes it (speaker padded)."""
    if speaker is None or emotion is None:
        s, e, _ = file_id.split("_")
        speaker = s if speaker is None else speaker
        emotion = e if emotion is None else emotion
    normalized = text.lower().rstrip(".")
    return f"{file_id}\t{emotion}\t{text}\t{normalized}\t{speaker:>11}\t{gender}\t{age}"


def _corpus(root, rows, files):
    root = Path(root)
    (root / "samples").mkdir(parents=True, exist_ok=True)
    (root / "data.tsv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


def _problems(manifest, root):
    """{where: reason} with paths relative to ``root`` (data.tsv:LINE for rows)."""
    return {os.path.relpath(p.path, root): p.reason for p in manifest.problems}


# --- The real corpus ----------------------------------------------------------------


def test_real_nemo_acceptance_counts():
    m = load_nemo(nemo_dir())
    assert len(m) == 4481
    assert m.problems == ()
    assert m.excluded == {}
    assert m.expected == 4481 and not m.incomplete()
    assert m.speakers() == ["EB0", "IC0", "KD0", "KS0", "MK0", "MP0", "SM0", "TP0", "WR0"]
    assert m.counts("emotion") == {
        "neutral": 809,
        "happy": 749,
        "sad": 769,
        "angry": 749,
        "fearful": 736,
        "surprised": 669,
    }
    assert m.counts("label") == {
        "anger": 749,
        "fear": 736,
        "happiness": 749,
        "neutral": 809,
        "sadness": 769,
        "surprised": 669,
    }
    speakers = m.counts("speaker")
    assert speakers["MK0"] == 450 and speakers["MP0"] == 256
    assert all(530 <= v <= 540 for k, v in speakers.items() if k not in ("MK0", "MP0"))
    genders = m.speaker_genders()
    assert sorted(s for s, g in genders.items() if g == "female") == ["EB0", "IC0", "KD0", "MK0"]
    assert list(genders.values()).count("male") == 5
    # The shared copy is re-encoded: data.tsv names .wav, the files are .opus.
    assert {Path(u.path).suffix for u in m} == {".opus"}
    assert {Path(u.get("file_id")).suffix for u in m} == {".wav"}
    for u in m:
        assert Path(u.path).is_file() and Path(u.path).is_absolute()
        assert Path(u.path).stem == Path(u.get("file_id")).stem
        assert Path(u.path).name.startswith(f"{u.speaker}_{u.label}_")
        assert u.get("age").isdigit() and u.get("raw_text") and u.get("normalized_text")
    # The sentence id names one sentence whatever the speaker and emotion.
    sentences = {}
    for u in m:
        sentences.setdefault(u.text, set()).add(u.get("normalized_text"))
    assert len(sentences) == 90
    assert all(len(v) == 1 for v in sentences.values())
    assert datasets.load("nemo", nemo_dir()) == m


def test_real_opus_files_decode():
    from speechmodel.audio import DEFAULT_SAMPLE_RATE, load_audio, read_info

    m = load_nemo(nemo_dir())
    picks = [m[i] for i in np.linspace(0, len(m) - 1, 12).astype(int)]
    start = time.perf_counter()
    seconds = 0.0
    for u in picks:
        info = read_info(u.path)
        assert (info.format, info.subtype, info.channels) == ("OGG", "OPUS", 1)
        y = load_audio(u.path)
        assert y.dtype == np.float32 and y.ndim == 1
        assert np.isfinite(y).all() and 0 < np.abs(y).max() <= 1.0
        assert abs(len(y) - info.frames * DEFAULT_SAMPLE_RATE / info.sample_rate) <= 1
        assert 0.5 < len(y) / DEFAULT_SAMPLE_RATE < 15
        seconds += len(y) / DEFAULT_SAMPLE_RATE
    elapsed = time.perf_counter() - start
    assert seconds / elapsed > 20  # decoding is far faster than real time


def test_real_manifest_csv_round_trip(tmp_path):
    m = load_nemo(nemo_dir())[:50]
    m.to_csv(tmp_path / "m.csv")
    back = Manifest.from_csv(tmp_path / "m.csv")
    assert list(back) == list(m)  # Polish text in `extra` survives


# --- Small generated corpora -------------------------------------------------------


def test_official_layout_fields(tmp_path):
    root = _corpus(
        tmp_path,
        [
            _row("WR0_surprised_64.wav", gender="male", age="23"),
            _row("EB0_neutral_13.wav", text="Interesuje mnie historia Polski."),
            _row("EB0_anger_2.wav"),
            _row("EB0_anger_10.wav"),
        ],
        [
            "samples/WR0_surprised_64.wav",
            "samples/EB0_neutral_13.wav",
            "samples/EB0_anger_2.wav",
            "samples/EB0_anger_10.wav",
            "samples/notes.txt",  # not audio: ignored
            "README.md",
        ],
    )
    m = load_nemo(root)
    assert m.problems == () and m.excluded == {}
    assert m.expected == 4481 and m.incomplete()
    # Sorted by speaker, then file name with numbers in order.
    assert [Path(u.path).name for u in m] == [
        "EB0_anger_2.wav",
        "EB0_anger_10.wav",
        "EB0_neutral_13.wav",
        "WR0_surprised_64.wav",
    ]
    u = m[2]
    assert u.corpus == "nemo" and u.emotion == "neutral" and u.label == "neutral"
    assert u.speaker == "EB0" and u.gender == "female" and u.text == "13"
    assert u.get("raw_text") == "Interesuje mnie historia Polski."
    assert u.get("normalized_text") == "interesuje mnie historia polski"
    assert u.get("age") == "27" and u.get("file_id") == "EB0_neutral_13.wav"
    assert m[3].speaker == "WR0" and m[3].gender == "male" and m[3].emotion == "surprised"
    assert {x.emotion for x in m[:2]} == {"angry"}


def test_other_extension_is_accepted_and_the_named_file_preferred(tmp_path):
    root = _corpus(
        tmp_path,
        [
            _row("EB0_anger_1.wav"),  # only an .opus copy
            _row("EB0_anger_2.wav"),  # .wav and .flac: the .wav is used
            _row("EB0_anger_3.wav"),  # only an upper-case .WAV
        ],
        [
            "samples/EB0_anger_1.opus",
            "samples/EB0_anger_2.wav",
            "samples/EB0_anger_2.flac",
            "samples/EB0_anger_3.WAV",
        ],
    )
    m = load_nemo(root)
    assert [Path(u.path).name for u in m] == [
        "EB0_anger_1.opus",
        "EB0_anger_2.wav",
        "EB0_anger_3.WAV",
    ]
    assert _problems(m, root) == {
        "samples/EB0_anger_2.flac": "another encoding of EB0_anger_2.wav, which "
        "data.tsv names (line 3) and which exists: the named file is preferred"
    }


def test_every_problem_is_reported_never_dropped(tmp_path):
    rows = [
        _row("EB0_anger_1.wav"),  # line 2: fine
        _row("EB0_anger_2.wav"),  # 3: no file at all
        _row("EB0_anger_3.wav"),  # 4: .opus and .flac, no .wav: ambiguous
        _row("EB0_fear_4.wav", emotion="boredom"),  # 5: unknown emotion
        _row("EB0_fear_5.wav", speaker="KS0"),  # 6: name and row disagree
        _row("EB0_fear_6.wav", emotion="sadness"),  # 7: name and row disagree
        _row("EB0_fear_7.wav", speaker=" "),  # 8: empty speaker
        _row("EB0_fear_8.wav", gender="unknown"),  # 9: bad gender
        _row("EB0_anger_1.wav"),  # 10: repeated row
        "EB0_fear_9.wav\tfear\tx",  # 11: too few cells
        _row("EB0_fear_10.wav") + "\textra",  # 12: too many cells
        _row("../EB0_fear_11.wav"),  # 13: not a plain name
        _row("EB0_fear_12.txt"),  # 14: not audio
        _row("recording 7.wav", emotion="fear", speaker="IC0"),  # 15: free name: fine
        "\t\t\t\t\t\t",  # blank line: skipped
        "\tanger\tx\tx\tEB0\tfemale\t27",  # 17: empty file_id
    ]
    files = [
        "samples/EB0_anger_1.wav",
        "samples/EB0_anger_3.opus",
        "samples/EB0_anger_3.flac",
        "samples/EB0_fear_4.wav",
        "samples/EB0_fear_5.wav",
        "samples/EB0_fear_6.wav",
        "samples/EB0_fear_7.wav",
        "samples/EB0_fear_8.wav",
        "samples/EB0_fear_9.wav",
        "samples/EB0_fear_10.wav",
        "samples/EB0_fear_12.txt",
        "samples/recording 7.wav",
        "samples/TP0_sadness_1.wav",  # not in data.tsv
        "samples/extra/EB0_anger_1.wav",  # a copy in a sub-folder
        "stray.opus",  # outside samples/
        "samples/._EB0_anger_1.wav",  # macOS resource fork: excluded, counted
    ]
    root = _corpus(tmp_path, rows, files)
    m = load_nemo(root)
    assert [Path(u.path).name for u in m] == ["EB0_anger_1.wav", "recording 7.wav"]
    assert m[1].speaker == "IC0" and m[1].text is None and m[1].emotion == "fearful"
    assert m.excluded == {"hidden files (names starting with '.', e.g. macOS ._ copies)": 1}
    problems = _problems(m, root)
    expected = {
        "data.tsv:3": "audio file not found: samples/EB0_anger_2.wav (nor under another audio extension)",
        "data.tsv:4": "EB0_anger_3.wav is absent and several files share its stem "
        "(EB0_anger_3.flac, EB0_anger_3.opus): which one is meant is ambiguous",
        "data.tsv:5": "samples/EB0_fear_4.wav: unknown emotion 'boredom' "
        "(nEMO's are anger, fear, happiness, neutral, sadness, surprised)",
        "data.tsv:6": "samples/EB0_fear_5.wav: the file name says speaker EB0, emotion "
        "fear, the row speaker KS0, emotion fear",
        "data.tsv:7": "samples/EB0_fear_6.wav: the file name says speaker EB0, emotion "
        "fear, the row speaker EB0, emotion sadness",
        "data.tsv:8": "samples/EB0_fear_7.wav: empty speaker_id",
        "data.tsv:9": "samples/EB0_fear_8.wav: gender must be male/female (or m/f). "
        "Received: 'unknown'",
        "data.tsv:10": f"{root}/samples/EB0_anger_1.wav: duplicate of "
        f"{root}/samples/EB0_anger_1.wav (same utterance); the first is used",
        "data.tsv:11": "samples/EB0_fear_9.wav: row has fewer cells than the header",
        "data.tsv:12": "row has more cells than the header",
        "data.tsv:13": "file_id '../EB0_fear_11.wav' is not a plain file name in samples/",
        "data.tsv:14": "file_id 'EB0_fear_12.txt' does not name an audio file",
        "data.tsv:17": "empty file_id",
        "samples/EB0_fear_10.wav": "not listed in data.tsv",
        "samples/TP0_sadness_1.wav": "not listed in data.tsv",
        "samples/extra/EB0_anger_1.wav": "not in samples/ (where data.tsv's files are)",
        "stray.opus": "not in samples/ (where data.tsv's files are)",
    }
    assert problems == expected
    # Every audio file is an utterance, named in a problem, or excluded.
    used = {os.path.relpath(u.path, root) for u in m}
    mentioned = " ".join(f"{p.path} {p.reason}" for p in m.problems)
    for name in files:
        if name.endswith(".txt") or "/._" in name:
            continue
        assert name in used or Path(name).name in mentioned, name


@pytest.mark.parametrize(
    "setup, found",
    [
        (lambda root: None, "no such directory"),
        (lambda root: (root / "samples").mkdir(parents=True), "no data.tsv"),
        (
            lambda root: _corpus(root / "nEMO-main", [_row("EB0_anger_1.wav")], []),
            "nEMO-main/ holds a data.tsv: use that directory",
        ),
        (
            lambda root: (root.mkdir(), (root / "data.tsv").write_text(HEADER + "\n")),
            "no samples/ folder",
        ),
        (lambda root: _corpus(root, [], []), "data.tsv lists no utterance"),
        (
            lambda root: (
                _corpus(root, [], []),
                (root / "data.tsv").write_text(HEADER.replace("\t", ",") + "\n"),
            ),
            "without the columns ['file_id', 'emotion', 'speaker_id']",
        ),
        (
            lambda root: (_corpus(root, [], []), (root / "data.tsv").write_text("")),
            "an empty data.tsv",
        ),
        (
            lambda root: (
                _corpus(root, [], []),
                (root / "data.tsv").write_bytes(
                    (HEADER + "\nEB0_anger_1.wav\tanger\tZa\u017c\u00f3\u0142\u0107\n").encode("cp1250")
                ),
            ),
            "data.tsv is not UTF-8 text",
        ),
    ],
)
def test_not_the_corpus(tmp_path, setup, found):
    root = tmp_path / "nemo"
    setup(root)
    with pytest.raises(CorpusError) as info:
        load_nemo(root)
    assert info.value.corpus == "nemo"
    assert found in str(info.value)
    assert "Expected: data.tsv" in str(info.value)


def test_parse_name():
    assert parse_name("WR0_surprised_64") == {
        "speaker": "WR0",
        "emotion": "surprised",
        "sentence": "64",
    }
    for stem in ("WR0_surprised", "WR0-surprised-64", "WR0_surprised_x"):
        with pytest.raises(ValueError, match="nEMO scheme"):
            parse_name(stem)


def test_registered():
    assert datasets.CORPORA["nemo"] is load_nemo
    assert datasets.corpus_name("nEMO") == "nemo"

import dataclasses
import json
import os
import warnings
from pathlib import Path

import pytest

from speechmodel.datasets.emotions import EMOTIONS
from speechmodel.datasets.manifest import Manifest, Utterance
from speechmodel.datasets.protocols import (
    Fold,
    check_fold,
    choose_speakers,
    make_folds,
    read_folds,
    write_folds,
)
from tests.paths import RAVDESS

REAL = RAVDESS


def _manifest(
    corpus, speakers, emotions, *, per=1, gender=None, session=None, name=None
):
    """``per`` utterances of every emotion for every speaker."""
    utterances = []
    for s in speakers:
        for e in emotions:
            for r in range(per):
                utterances.append(
                    Utterance(
                        path=f"/data/{corpus}/{s}/{e}_{r}.wav",
                        corpus=corpus,
                        emotion=e,
                        label=e,
                        speaker=s,
                        gender=gender(s) if gender else None,
                        session=session(s) if session else None,
                    )
                )
    return Manifest(utterances, name=name or corpus)


def _ravdess_like():
    return _manifest(
        "ravdess",
        [f"{i:02d}" for i in range(1, 25)],
        EMOTIONS[:8],
        gender=lambda s: "male" if int(s) % 2 else "female",
    )


def _iemocap_like():
    speakers = [f"Ses0{i}{g}" for i in range(1, 6) for g in "FM"]
    return _manifest(
        "iemocap",
        speakers,
        ["neutral", "happy", "sad", "angry"],
        per=2,
        gender=lambda s: "female" if s.endswith("F") else "male",
        session=lambda s: s[:5],
    )


def _emodb_like():
    genders = {
        "03": "male",
        "08": "female",
        "09": "female",
        "10": "male",
        "11": "male",
        "12": "male",
        "13": "female",
        "14": "female",
        "15": "male",
        "16": "female",
    }
    return _manifest(
        "emodb",
        list(genders),
        ["neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"],
        gender=genders.get,
    )


def _assert_speaker_independent(folds, manifest, *, test_manifest=None, covers=True):
    """The test's own check, independent of protocols.check_fold."""
    ids = manifest.speaker_ids()
    test_source = test_manifest if test_manifest is not None else manifest
    test_ids = test_source.speaker_ids()
    for fold in folds:
        train, val, test = set(fold.train), set(fold.val), set(fold.test)
        assert len(train) == len(fold.train) and len(val) == len(fold.val)
        assert not train & val
        train_spk = {ids[i] for i in train}
        val_spk = {ids[i] for i in val}
        test_spk = {test_ids[i] for i in test}
        if test_manifest is None:
            assert not (train | val) & test
        else:
            corpora_a = {(manifest[i].corpus, manifest[i].speaker) for i in train | val}
            corpora_b = {
                (test_manifest[i].corpus, test_manifest[i].speaker) for i in test
            }
            assert not corpora_a & corpora_b
        if test_manifest is None:
            assert not train_spk & test_spk, fold.name
            assert not val_spk & test_spk, fold.name
        assert not train_spk & val_spk, fold.name
        assert set(fold.train_speakers) == train_spk
        assert set(fold.val_speakers) == val_spk
        assert set(fold.test_speakers) == test_spk
        assert fold.speaker_independent
        if covers and test_manifest is None:
            assert train | val | test == set(range(len(manifest))), fold.name
        assert list(fold.train) == sorted(fold.train)


# --- Every protocol: no leakage, coverage ------------------------------------------


@pytest.mark.parametrize(
    "protocol, options",
    [
        ("loso", {}),
        ("kfold", {}),
        ("kfold", {"grouping": "shuffled", "k": 4}),
        ("kfold", {"grouping": "contiguous", "k": 5}),
        ("holdout", {}),
        ("holdout", {"holdout_speakers": ["03", "04", "17"]}),
        ("holdout", {"holdout_speakers": 3}),
        ("all", {}),
        ("loso", {"val_speakers": 3}),
        ("kfold", {"val_speakers": ["01", "02", "05"]}),
    ],
)
def test_speaker_protocols_never_leak_and_cover(protocol, options):
    m = _ravdess_like()
    folds = make_folds(m, protocol, seed=3, **options)
    _assert_speaker_independent(folds, m)
    tested = [s for f in folds for s in f.test_speakers]
    if protocol in ("loso", "kfold"):
        assert sorted(tested) == m.speakers()  # every speaker tested exactly once
    if protocol == "all":
        assert folds[0].test == () and folds[0].val_speakers
    if options.get("val_speakers") == 3:
        assert all(len(f.val_speakers) == 3 for f in folds)


def test_session_protocol_iemocap():
    m = _iemocap_like()
    folds = make_folds(m, "session")
    assert [f.name for f in folds] == ["Ses01", "Ses02", "Ses03", "Ses04", "Ses05"]
    _assert_speaker_independent(folds, m)
    for f in folds:
        assert f.test_speakers == (f.name + "F", f.name + "M")
        assert {m[i].session for i in f.test} == {f.name}
        # Eight training speakers, 4 of each gender: two validation speakers, one of each.
        assert len(f.val_speakers) == 2
        assert {m.speaker_genders()[s] for s in f.val_speakers} == {"male", "female"}


def test_session_protocol_speaker_in_two_sessions():
    base = _manifest(
        "thaiser",
        ["a1", "a2", "a3", "a4"],
        ["sad", "angry"],
        session=lambda s: {"a1": "s1", "a2": "s1", "a3": "s2", "a4": "s3"}[s],
    )
    extra = Utterance(
        path="/data/thaiser/a1/x.wav",
        corpus="thaiser",
        emotion="sad",
        label="sad",
        speaker="a1",
        session="s3",
    )
    m = Manifest(list(base) + [extra])
    folds = make_folds(m, "session", val_speakers=0)
    _assert_speaker_independent(folds, m, covers=False)
    s3 = next(f for f in folds if f.name == "s3")
    assert s3.test_speakers == ("a1", "a4")
    assert s3.train_speakers == ("a2", "a3")
    s1 = next(f for f in folds if f.name == "s1")
    # a1's utterance of session s3 is in no set of the s1 fold (documented).
    assert len(m) - 1 not in set(s1.train + s1.val + s1.test)
    assert len(s1.train) + len(s1.test) == len(m) - 1


def test_cross_protocol():
    a = _emodb_like()
    b = _ravdess_like()
    folds = make_folds(a, "cross", test_manifest=b)
    (fold,) = folds
    assert fold.emotions == ("neutral", "happy", "sad", "angry", "fearful", "disgust")
    _assert_speaker_independent(folds, a, test_manifest=b)
    assert set(fold.train + fold.val) == {
        i for i, u in enumerate(a) if u.emotion in fold.emotions
    }
    assert {b[i].emotion for i in fold.test} == set(fold.emotions)
    assert len(fold.test) == 24 * 6
    assert "boredom" not in {a[i].emotion for i in fold.train}
    with pytest.raises(ValueError, match="share speakers"):
        make_folds(b, "cross", test_manifest=b)
    c = _manifest("tess", ["OAF"], ["calm"])
    with pytest.raises(ValueError, match="share no emotion"):
        make_folds(a, "cross", test_manifest=c)
    with pytest.raises(ValueError, match="test_manifest"):
        make_folds(a, "cross")
    with pytest.raises(ValueError, match="test_manifest"):
        make_folds(a, "loso", test_manifest=b)


# --- Defaults, determinism, validation speakers -------------------------------------


def test_ravdess_default_kfold_is_six_contiguous_folds():
    m = _ravdess_like()
    folds = make_folds(m, "kfold")
    assert [f.name for f in folds] == [f"fold{i}" for i in range(1, 7)]
    assert [f.test_speakers for f in folds] == [
        tuple(f"{i:02d}" for i in range(start, start + 4)) for start in range(1, 25, 4)
    ]
    genders = m.speaker_genders()
    for f in folds:
        assert len(f.val_speakers) == 2
        assert sorted(genders[s] for s in f.val_speakers) == ["female", "male"]
        assert len(f.train_speakers) == 18


@pytest.mark.skipif(not REAL.is_dir(), reason=f"RAVDESS copy not found at {REAL}")
def test_real_ravdess_kfold():
    from speechmodel.datasets.ravdess import load_ravdess

    m = load_ravdess(REAL)
    folds = make_folds(m, "kfold")
    _assert_speaker_independent(folds, m)
    assert [len(f.test) for f in folds] == [240] * 6
    assert [len(f.val) for f in folds] == [120] * 6


def test_shuffled_kfold_balances_genders_and_sizes():
    m = _manifest(
        "cremad",
        [str(1001 + i) for i in range(20)],
        ["sad", "angry"],
        gender=lambda s: "male" if int(s) < 1011 else "female",
    )
    folds = make_folds(m, "kfold")  # not RAVDESS: shuffled, k=5
    assert len(folds) == 5
    genders = m.speaker_genders()
    for f in folds:
        assert len(f.test_speakers) == 4
        assert (
            sorted(genders[s] for s in f.test_speakers) == ["female"] * 2 + ["male"] * 2
        )


def test_folds_are_deterministic_for_a_seed():
    m = _manifest("cremad", [str(1001 + i) for i in range(30)], ["sad", "angry"])
    for protocol in ("kfold", "loso", "holdout", "all"):
        assert make_folds(m, protocol, seed=7) == make_folds(m, protocol, seed=7)
    a = make_folds(m, "kfold", seed=1)
    b = make_folds(m, "kfold", seed=2)
    assert [f.test_speakers for f in a] != [f.test_speakers for f in b]


def test_choose_speakers_gender_balance():
    genders = {f"m{i}": "male" for i in range(5)} | {
        f"f{i}": "female" for i in range(2)
    }
    import numpy as np

    rng = np.random.default_rng(0)
    picked = choose_speakers(list(genders), 4, genders, rng)
    assert sorted(genders[s] for s in picked) == ["female", "female", "male", "male"]
    picked = choose_speakers(
        list(genders), 6, genders, rng
    )  # only 2 females: rest male
    assert sorted(genders[s] for s in picked).count("female") == 2
    picked = choose_speakers(
        list(genders), 3, genders, rng
    )  # odd one from the larger gender
    assert sorted(genders[s] for s in picked) == ["female", "male", "male"]


def test_small_corpora_validation_rules():
    tess = _manifest(
        "tess", ["OAF", "YAF"], ["sad", "angry"], gender=lambda s: "female"
    )
    folds = make_folds(tess, "loso")
    assert [f.val for f in folds] == [(), ()]  # one training speaker: no validation
    _assert_speaker_independent(folds, tess)
    emodb = _emodb_like()
    folds = make_folds(emodb, "loso")
    assert all(len(f.val_speakers) == 2 for f in folds)
    with pytest.raises(ValueError, match="leaves no training speaker"):
        make_folds(tess, "loso", val_speakers=1)


# --- Refusals and bad options ------------------------------------------------------


def test_unknown_speakers_refused():
    m = _manifest("folder", ["unknown"], ["sad", "angry"], per=5)
    for protocol in ("loso", "kfold", "holdout", "all"):
        with pytest.raises(ValueError, match="speaker 'unknown'"):
            make_folds(m, protocol)
    # Another corpus' unknown speakers are not the training speakers...
    (fold,) = make_folds(_emodb_like(), "cross", test_manifest=m)
    assert fold.test_speakers == ("unknown",)
    # ... but within one corpus they could be.
    known = _manifest("folder", ["s1", "s2", "s3"], ["sad", "angry"])
    with pytest.raises(ValueError, match="speaker 'unknown'"):
        make_folds(known, "cross", test_manifest=m)
    # Training on unknown speakers works only without validation.
    with pytest.raises(ValueError, match="val_speakers=0"):
        make_folds(m, "cross", test_manifest=_emodb_like())
    (fold,) = make_folds(m, "cross", test_manifest=_emodb_like(), val_speakers=0)
    assert fold.val == () and len(fold.train) == 10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"protocol": "lolo"}, "protocol='lolo'"),
        ({"protocol": "kfold", "k": 25}, "k=25"),
        ({"protocol": "kfold", "k": 1}, "k=1"),
        ({"protocol": "kfold", "grouping": "random"}, "grouping='random'"),
        ({"protocol": "loso", "k": 3}, "'kfold' and 'multi' protocols only"),
        ({"protocol": "loso", "holdout_speakers": ["01"]}, "'holdout' protocol only"),
        ({"protocol": "holdout", "holdout_speakers": ["99"]}, "not in the manifest"),
        (
            {"protocol": "holdout", "holdout_speakers": 24},
            "at least one training speaker",
        ),
        ({"protocol": "loso", "val_speakers": ["99"]}, "not in the manifest"),
        ({"protocol": "loso", "val_speakers": -1}, "val_speakers=-1"),
        ({"protocol": "loso", "seed": -1}, "seed=-1"),
        ({"protocol": "session"}, "needs a session"),
        ({"protocol": "loso", "random_split": True}, "does not apply"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_folds(_ravdess_like(), **kwargs)


# --- Random splits ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["kfold", "holdout", "all"])
def test_random_split_warns_and_stays_disjoint(protocol):
    m = _manifest("folder", ["unknown"], ["sad", "angry", "happy"], per=20)
    with pytest.warns(UserWarning, match="share speakers"):
        folds = make_folds(m, protocol, random_split=True, seed=1)
    for f in folds:
        assert not f.speaker_independent
        assert not set(f.train) & set(f.val) and not set(f.train) & set(f.test)
        assert not set(f.val) & set(f.test)
        assert set(f.train) | set(f.val) | set(f.test) == set(range(len(m)))
        # Stratified: every emotion in validation.
        assert {m[i].emotion for i in f.val} == {"sad", "angry", "happy"}
    if protocol == "kfold":
        assert sorted(i for f in folds for i in f.test) == list(range(len(m)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert make_folds(m, protocol, random_split=True, seed=1) == folds
    with pytest.raises(ValueError, match="val_fraction"):
        make_folds(m, protocol, random_split=True, val_speakers=2)


def test_random_split_cross():
    a = _manifest("folder", ["unknown"], ["sad", "angry", "boredom"], per=10)
    b = _ravdess_like()
    with pytest.warns(UserWarning):
        (fold,) = make_folds(a, "cross", test_manifest=b, random_split=True)
    assert fold.emotions == ("sad", "angry")
    assert {a[i].emotion for i in fold.train + fold.val} == {"sad", "angry"}
    assert len(fold.train) + len(fold.val) == 20
    assert len(fold.test) == 48


# --- check_fold, files -------------------------------------------------------------


def test_check_fold_catches_leaks():
    m = _ravdess_like()
    fold = make_folds(m, "holdout")[0]
    check_fold(fold, m)
    leaked_index = fold.test[0]
    bad = dataclasses.replace(
        fold,
        train=tuple(sorted(fold.train + (leaked_index,))),
        train_speakers=tuple(
            sorted(set(fold.train_speakers) | {m.speaker_ids()[leaked_index]})
        ),
    )
    with pytest.raises(ValueError, match="in both train and test"):
        check_fold(bad, m)
    with pytest.raises(ValueError, match="do not match"):
        check_fold(dataclasses.replace(fold, train_speakers=fold.train_speakers[1:]), m)
    with pytest.raises(ValueError, match="out of range"):
        check_fold(dataclasses.replace(fold, test=fold.test + (10_000,)), m)


def test_write_read_round_trip(tmp_path):
    m = _iemocap_like()
    folds = make_folds(m, "session", seed=5)
    path = tmp_path / "out" / "folds.json"
    write_folds(folds, m, path)
    assert read_folds(path) == folds
    assert read_folds(path, manifest=m) == folds
    assert os.listdir(path.parent) == ["folds.json"]  # no temporary file left
    data = json.loads(path.read_text())
    assert data["folds"][0]["test_speakers"] == ["Ses01F", "Ses01M"]
    assert data["manifest"]["n"] == len(m)
    # A changed corpus is noticed.
    with pytest.raises(ValueError, match="different manifest"):
        read_folds(path, manifest=m[1:])
    # A hand-edited file that leaks is caught when checked against the manifest.
    data["folds"][0]["train"].append(data["folds"][0]["test"][0])
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="folds.json: Fold 'Ses01'"):
        read_folds(path, manifest=m)


def test_write_read_cross(tmp_path):
    a, b = _emodb_like(), _ravdess_like()
    folds = make_folds(a, "cross", test_manifest=b)
    write_folds(folds, a, tmp_path / "f.json", test_manifest=b)
    assert read_folds(tmp_path / "f.json", manifest=a, test_manifest=b) == folds


def test_read_folds_rejects_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"folds": []}')
    with pytest.raises(ValueError, match="not a folds file"):
        read_folds(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("not json")
    with pytest.raises(ValueError, match="not a JSON file"):
        read_folds(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(
        json.dumps(
            {
                "format": "speechmodel-folds",
                "version": 1,
                "folds": [{"name": "f", "train": [1.5]}],
            }
        )
    )
    with pytest.raises(ValueError, match="lacks"):
        read_folds(tmp_path / "z.json")


def test_fold_record_round_trip():
    fold = Fold("f", (1, 2), (3,), (), ("a",), ("b",), (), ("sad",), False)
    assert Fold.from_dict(fold.to_dict()) == fold


# --- Several corpora: leave one corpus out, k-fold inside each corpus -------------

NEMO_GENDERS = {
    "EB0": "female",
    "IC0": "female",
    "KD0": "female",
    "KS0": "male",
    "MK0": "female",
    "MP0": "male",
    "SM0": "male",
    "TP0": "male",
    "WR0": "male",
}
SHARED = ("neutral", "happy", "sad", "angry", "fearful", "surprised")


def _nemo_like():
    return _manifest("nemo", list(NEMO_GENDERS), SHARED, gender=NEMO_GENDERS.get)


def _by_corpus(speakers):
    out = {}
    for s in speakers:
        corpus, _, _ = s.partition("/")
        out.setdefault(corpus, []).append(s)
    return out


def test_loco_two_corpora():
    r, n = _ravdess_like(), _nemo_like()
    m = Manifest.concat([r, n])
    folds = make_folds(m, "loco")
    assert [f.name for f in folds] == ["loco-nemo", "loco-ravdess"]
    _assert_speaker_independent(folds, m, covers=False)
    shared = {i for i, u in enumerate(m) if u.emotion in SHARED}
    for fold in folds:
        held_out = fold.name.removeprefix("loco-")
        assert fold.emotions == SHARED
        assert set(fold.test) == {i for i in shared if m[i].corpus == held_out}
        assert set(fold.train + fold.val) == {i for i in shared if m[i].corpus != held_out}
        assert {s.partition("/")[0] for s in fold.test_speakers} == {held_out}
        assert {s.partition("/")[0] for s in fold.train_speakers + fold.val_speakers} == (
            {"ravdess", "nemo"} - {held_out}
        )
        # calm and disgust (RAVDESS only) are in no set of any fold.
        assert {m[i].emotion for i in fold.train + fold.val + fold.test} == set(SHARED)
        # Two validation speakers (one of each gender) from the training corpus.
        genders = m.speaker_genders()
        assert sorted(genders[s] for s in fold.val_speakers) == ["female", "male"]
    assert len(folds[0].test) == 9 * 6 and len(folds[1].test) == 24 * 6
    assert len(folds[0].train_speakers) == 22 and len(folds[1].train_speakers) == 7


def test_loco_three_corpora_shares_the_emotions_of_all_and_validates_per_corpus():
    m = Manifest.concat([_ravdess_like(), _nemo_like(), _emodb_like()])
    folds = make_folds(m, "loco", seed=4)
    assert [f.name for f in folds] == ["loco-emodb", "loco-nemo", "loco-ravdess"]
    _assert_speaker_independent(folds, m, covers=False)
    for fold in folds:
        # emodb has no surprised, nemo no disgust, ravdess no boredom.
        assert fold.emotions == ("neutral", "happy", "sad", "angry", "fearful")
        training = _by_corpus(fold.train_speakers + fold.val_speakers)
        assert len(training) == 2
        val = _by_corpus(fold.val_speakers)
        assert sorted(val) == sorted(training)  # every training corpus validates
        assert all(len(v) == 2 for v in val.values())
    assert make_folds(m, "loco", seed=4) == folds


def test_loco_refusals():
    r = _ravdess_like()
    with pytest.raises(ValueError, match="at least 2 corpora"):
        make_folds(r, "loco")
    a = _manifest("tess", ["OAF", "YAF"], ["calm"])
    with pytest.raises(ValueError, match="share no emotion"):
        make_folds(Manifest.concat([a, _nemo_like()]), "loco")
    m = Manifest.concat([r, _nemo_like()])
    with pytest.raises(ValueError, match="does not apply"):
        make_folds(m, "loco", random_split=True)
    with pytest.raises(ValueError, match="'kfold' and 'multi' protocols only"):
        make_folds(m, "loco", k=3)


def test_multi_keeps_ravdess_folds_and_splits_nemo():
    r, n = _ravdess_like(), _nemo_like()
    m = Manifest.concat([r, n])
    folds = make_folds(m, "multi")
    assert [f.name for f in folds] == [f"fold{i}" for i in range(1, 7)]
    _assert_speaker_independent(folds, m)
    # RAVDESS: its usual 6 contiguous folds of 4 actors.
    assert [_by_corpus(f.test_speakers)["ravdess"] for f in folds] == [
        [f"ravdess/{i:02d}" for i in range(start, start + 4)] for start in range(1, 25, 4)
    ]
    # nEMO: every speaker tested exactly once, in every fold 1 or 2 of them,
    # the two of a pair of different genders.
    nemo_tested = [_by_corpus(f.test_speakers)["nemo"] for f in folds]
    assert sorted(s for group in nemo_tested for s in group) == [f"nemo/{s}" for s in NEMO_GENDERS]
    assert sorted(len(g) for g in nemo_tested) == [1, 1, 1, 2, 2, 2]
    genders = m.speaker_genders()
    for group in nemo_tested:
        if len(group) == 2:
            assert {genders[s] for s in group} == {"male", "female"}
    assert sorted(i for f in folds for i in f.test) == list(range(len(m)))
    for f in folds:
        val = _by_corpus(f.val_speakers)
        assert sorted(val) == ["nemo", "ravdess"]
        for corpus, speakers in val.items():
            assert sorted(genders[s] for s in speakers) == ["female", "male"], (f.name, corpus)
        assert {m[i].corpus for i in f.train} == {"ravdess", "nemo"}
    assert make_folds(m, "multi", seed=1) != make_folds(m, "multi", seed=2)
    assert make_folds(m, "multi", seed=1) == make_folds(m, "multi", seed=1)


def test_multi_on_one_corpus_is_kfold():
    r, n = _ravdess_like(), _nemo_like()
    assert make_folds(r, "multi") == make_folds(r, "kfold")
    assert make_folds(n, "multi", k=3, seed=5) == make_folds(n, "kfold", k=3, seed=5)
    assert len(make_folds(n, "multi", k=9)) == 9


def test_multi_options_and_refusals():
    m = Manifest.concat([_ravdess_like(), _nemo_like()])
    folds = make_folds(m, "multi", k=9)
    assert [len(_by_corpus(f.test_speakers)["nemo"]) for f in folds] == [1] * 9
    assert [len(_by_corpus(f.test_speakers)["ravdess"]) for f in folds] == [3] * 6 + [2] * 3
    folds = make_folds(m, "multi", grouping="contiguous", k=3, val_speakers=1)
    assert _by_corpus(folds[0].test_speakers)["nemo"] == ["nemo/EB0", "nemo/IC0", "nemo/KD0"]
    assert all(len(f.val_speakers) == 2 for f in folds)  # one per corpus
    _assert_speaker_independent(folds, m)
    with pytest.raises(ValueError, match=r"nemo has 9 speakers. Received: k=10"):
        make_folds(m, "multi", k=10)
    tess = _manifest("tess", ["OAF", "YAF"], SHARED, gender=lambda s: "female")
    with pytest.raises(ValueError, match="tess has 2 speakers"):
        make_folds(Manifest.concat([_ravdess_like(), tess]), "multi")
    with pytest.raises(ValueError, match="grouping='random'"):
        make_folds(m, "multi", grouping="random")
    with pytest.raises(ValueError, match=r"leaves no training speaker \(corpus nemo\)"):
        make_folds(m, "multi", val_speakers=8)
    with pytest.raises(ValueError, match="does not apply"):
        make_folds(m, "multi", random_split=True)


def test_same_speaker_names_in_two_corpora_stay_apart():
    a = _manifest("cremad", ["s1", "s2", "s3"], ["sad", "angry"])
    b = _manifest("savee", ["s1", "s2", "s3"], ["sad", "angry"])
    m = Manifest.concat([a, b])
    assert m.speakers() == [f"{c}/s{i}" for c in ("cremad", "savee") for i in (1, 2, 3)]
    folds = make_folds(m, "loso")
    assert len(folds) == 6
    _assert_speaker_independent(folds, m)
    fold = next(f for f in folds if f.name == "loso-cremad/s1")
    assert {m[i].corpus for i in fold.test} == {"cremad"}
    assert "savee/s1" in fold.train_speakers + fold.val_speakers
    folds = make_folds(m, "multi", k=3)
    _assert_speaker_independent(folds, m)
    for f in folds:
        assert sorted(_by_corpus(f.test_speakers)) == ["cremad", "savee"]
        # One validation speaker from each corpus (2 training speakers each).
        assert sorted(_by_corpus(f.val_speakers)) == ["cremad", "savee"]


def test_write_read_loco(tmp_path):
    m = Manifest.concat([_ravdess_like(), _nemo_like()])
    folds = make_folds(m, "loco")
    write_folds(folds, m, tmp_path / "f.json")
    assert read_folds(tmp_path / "f.json", manifest=m) == folds


def test_real_ravdess_and_nemo_loco_and_multi():
    from speechmodel.datasets.nemo import load_nemo
    from speechmodel.datasets.ravdess import load_ravdess
    from tests.paths import RAVDESS, nemo_dir

    r, n = load_ravdess(RAVDESS), load_nemo(nemo_dir())
    m = Manifest.concat([r, n])
    assert len(m) == 1440 + 4481 and len(m.speakers()) == 33
    folds = make_folds(m, "loco")
    _assert_speaker_independent(folds, m, covers=False)
    loco = {f.name: f for f in folds}
    assert loco["loco-nemo"].emotions == SHARED
    assert len(loco["loco-nemo"].test) == 4481
    assert len(loco["loco-nemo"].train) + len(loco["loco-nemo"].val) == 1440 - 2 * 192
    assert len(loco["loco-ravdess"].test) == 1440 - 2 * 192
    assert len(loco["loco-ravdess"].train) + len(loco["loco-ravdess"].val) == 4481
    assert len(loco["loco-nemo"].val_speakers) == 2
    assert len(loco["loco-ravdess"].val_speakers) == 2
    folds = make_folds(m, "multi")
    _assert_speaker_independent(folds, m)
    assert len(folds) == 6
    ravdess_test = [sum(1 for i in f.test if m[i].corpus == "ravdess") for f in folds]
    assert ravdess_test == [240] * 6
    sizes = n.counts("speaker")
    for f in folds:
        nemo_speakers = _by_corpus(f.test_speakers)["nemo"]
        expected = sum(sizes[s.partition("/")[2]] for s in nemo_speakers)
        assert sum(1 for i in f.test if m[i].corpus == "nemo") == expected
        assert len(_by_corpus(f.val_speakers)["nemo"]) == 2
        assert len(_by_corpus(f.val_speakers)["ravdess"]) == 2


@pytest.mark.parametrize("protocol,options", [
    ("loso", {}), ("kfold", {"k": 3}), ("holdout", {}), ("all", {}), ("multi", {"k": 3}), ("loco", {}),
])
def test_train_only_speakers_train_in_every_fold_and_are_never_held_out(protocol, options):
    pooled = [
        dataclasses.replace(u, extra=(("train_only", "yes"),))
        for u in _manifest("emo", ["pool"], ["calm", "angry"], per=3)
    ]
    own = _manifest("emo", [f"u{i}" for i in range(6)], ["calm", "angry"])
    emo = Manifest(list(own) + pooled, name="emo")
    other = _manifest("ravdess", [f"{i:02d}" for i in range(1, 7)], ["calm", "angry"])
    manifest = Manifest.concat([emo, other]) if protocol in ("multi", "loco") else emo
    pool = "emo/pool" if protocol in ("multi", "loco") else "pool"
    assert manifest.train_only_speakers() == [pool]
    folds = make_folds(manifest, protocol, **options)
    assert folds
    for fold in folds:
        if protocol != "loco" or fold.name != "loco-emo":
            assert pool in fold.train_speakers
        assert pool not in fold.val_speakers + fold.test_speakers
    if protocol == "loso":
        assert len(folds) == 6

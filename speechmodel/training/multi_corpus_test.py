"""Several corpora in one experiment: the config forms, the manifests the
runner builds from them, the folds, and train.py's flags."""

import copy
import json
import subprocess
import sys

import pytest

from speechmodel.training import config as C
from speechmodel.training.corpora import corpus_specs
from speechmodel.training.defaults import ConfigError
from speechmodel.training.folds import RunError, load_manifests, make_protocol_folds
from tests.paths import RAVDESS, REPO, nemo_dir, require

SHARED = ["neutral", "happy", "sad", "angry", "fearful", "surprised"]


def _specs(dataset):
    return corpus_specs(C.resolve({"dataset": dataset})["dataset"])


def test_one_corpus_is_unchanged():
    assert _specs({"name": "ravdess", "data_dir": "/r", "options": {"include_song": True}}) == [
        {"name": "ravdess", "data_dir": "/r", "options": {"include_song": True}}
    ]
    assert C.resolve({})["dataset"]["corpora"] is None


def test_comma_list_and_corpora_list_describe_the_same_corpora():
    expected = [
        {"name": "ravdess", "data_dir": "/r", "options": {}},
        {"name": "nemo", "data_dir": "/n", "options": {}},
    ]
    assert _specs({"name": "ravdess,nemo", "data_dir": "/r,/n"}) == expected
    assert _specs({"name": "ravdess+nemo", "data_dir": ["/r", "/n"]}) == expected
    listed = {"corpora": [{"name": "ravdess", "data_dir": "/r"}, {"name": "nemo", "data_dir": "/n"}]}
    resolved = C.resolve({"dataset": listed})
    assert resolved["dataset"]["name"] == "ravdess,nemo"  # filled in: names the run
    assert corpus_specs(resolved["dataset"]) == expected
    # A top-level data_dir (--data_dir A,B over a config file) overrides the entries'.
    moved = dict(listed, data_dir="/x,/y")
    assert [s["data_dir"] for s in _specs(moved)] == ["/x", "/y"]
    with_options = {"corpora": [{"name": "ravdess", "options": {"include_song": True}}, {"name": "nemo"}]}
    assert _specs(with_options)[0]["options"] == {"include_song": True}
    assert _specs({"name": "ravdess,nemo"})[1]["data_dir"] is None  # the runner says what is missing


@pytest.mark.parametrize(
    "dataset, message",
    [
        ({"name": "ravdess,nemo", "data_dir": "/r"}, r"one directory per corpus \(2: ravdess, nemo\)"),
        ({"name": "ravdess,nemo", "data_dir": "/r,/n,/x"}, "one directory per corpus"),
        ({"name": "ravdess,RAVDESS", "data_dir": "/r,/s"}, "listed twice"),
        ({"name": "ravdess,", "data_dir": "/r,/s"}, "Empty corpus name"),
        ({"name": "ravdess,nemo", "options": {"include_song": True}}, "options apply to a single corpus"),
        ({"name": "emodb", "corpora": [{"name": "ravdess"}, {"name": "nemo"}]}, "'ravdess,nemo'. Received: name='emodb'"),
        ({"corpora": [{"name": "ravdess", "dir": "/r"}]}, r"Unknown key in dataset.corpora: \['dir'\]"),
        ({"corpora": []}, "non-empty list"),
        ({"corpora": [{"name": "ravdess"}, {"name": "nemo"}], "options": {"a": 1}}, "options per corpus"),
    ],
)
def test_inconsistent_descriptions_are_refused(dataset, message):
    with pytest.raises(ConfigError, match=message):
        C.resolve({"dataset": dataset})


def test_digest_ignores_data_dirs_and_keeps_old_runs():
    a = C.resolve({"dataset": {"corpora": [{"name": "ravdess", "data_dir": "/r"}, {"name": "nemo", "data_dir": "/n"}]}})
    b = C.resolve({"dataset": {"corpora": [{"name": "ravdess", "data_dir": "/x"}, {"name": "nemo", "data_dir": "/y"}]}})
    c = C.resolve({"dataset": {"corpora": [{"name": "ravdess", "data_dir": "/r"}, {"name": "emodb", "data_dir": "/n"}]}})
    assert C.digest(a) == C.digest(b) != C.digest(c)
    assert C.default_output_dir(a).startswith("runs/ravdess,nemo-speechmodel-kfold-")
    # A config.json written before dataset.corpora existed has the same digest.
    new = C.resolve({"training": {"epochs": 3}})
    old = copy.deepcopy(new)
    del old["dataset"]["corpora"]
    assert C.digest(new) == C.digest(old)


# --- The runner on the real corpora --------------------------------------------------


def _config(protocol="loco", **dataset):
    require(RAVDESS)
    dataset = dataset or {"name": "ravdess,nemo", "data_dir": f"{RAVDESS},{nemo_dir()}"}
    return C.resolve({"dataset": dataset, "protocol": {"name": protocol}})


def test_loco_keeps_the_shared_emotions():
    manifest, test_manifest, classes = load_manifests(_config("loco"))
    assert test_manifest is None
    assert classes == SHARED
    assert manifest.corpora() == ["nemo", "ravdess"] and manifest.name == "ravdess+nemo"
    assert len(manifest) == 4481 + 1440 - 2 * 192  # RAVDESS without calm and disgust
    assert len(manifest.speakers()) == 33 and "nemo/EB0" in manifest.speakers()
    folds = make_protocol_folds(_config("loco"), manifest, None)
    assert [f.name for f in folds] == ["loco-nemo", "loco-ravdess"]
    assert [len(f.test) for f in folds] == [4481, 1056]


def test_multi_keeps_the_union_unless_emotions_restrict_it():
    manifest, _, classes = load_manifests(_config("multi"))
    assert classes == ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert len(manifest) == 4481 + 1440
    config = _config("multi")
    config["protocol"]["k"] = 9
    folds = make_protocol_folds(config, manifest, None)
    assert len(folds) == 9
    assert sorted(i for f in folds for i in f.test) == list(range(len(manifest)))
    config = _config("multi")
    config["dataset"]["emotions"] = ["angry", "sad"]
    manifest, _, classes = load_manifests(config)
    assert classes == ["sad", "angry"] and manifest.corpora() == ["nemo", "ravdess"]
    config["dataset"]["emotions"] = ["calm", "disgust"]
    with pytest.raises(RunError, match="No utterances left in nemo"):
        load_manifests(config)


def test_runner_refusals():
    require(RAVDESS)
    with pytest.raises(RunError, match="needs several corpora"):
        load_manifests(_config("loco", name="nemo", data_dir=str(nemo_dir())))
    # An unknown corpus is refused with the config, before any loading.
    with pytest.raises(ConfigError, match="name='polish'"):
        _config("loco", name="ravdess,polish", data_dir=f"{RAVDESS},{nemo_dir()}")
    with pytest.raises(RunError, match="No data directory for corpus 'ravdess'"):
        load_manifests(_config("loco", name="ravdess,nemo"))
    with pytest.raises(RunError, match="does not look like the nemo corpus"):
        load_manifests(_config("loco", name="ravdess,nemo", data_dir=f"{RAVDESS},{RAVDESS}"))


# --- train.py's flags ------------------------------------------------------------------


def _train(*args):
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": "/tmp"},
        timeout=120,
    )


def test_train_flags_for_several_corpora():
    done = _train("--dataset", "ravdess,nemo", "--data_dir", "/r,/n", "--protocol", "loco",
                  "--model", "svm", "--print_config")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["dataset"]["name"] == "ravdess,nemo"
    assert corpus_specs(config["dataset"]) == [
        {"name": "ravdess", "data_dir": "/r", "options": {}},
        {"name": "nemo", "data_dir": "/n", "options": {}},
    ]
    assert config["protocol"]["name"] == "loco"
    done = _train("--dataset", "ravdess,nemo", "--data_dir", "/r", "--print_config")
    assert done.returncode == 2
    assert "one directory per corpus (2: ravdess, nemo)" in done.stderr

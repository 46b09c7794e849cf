"""train.py's command line: every mistake a user can type is one line on
stderr and exit status 2, found before TensorFlow is imported and before
anything is written; --set, the stage-1 flags, --init_from, --final_model
and the recommended recipe, through --print_config and --dry_run (no
training here)."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.paths import REPO, RAVDESS, require

# Runs train.py's main module and reports, after it, whether TensorFlow was
# imported.
PROBE = """
import runpy, sys
sys.argv = ["train.py"] + sys.argv[1:]
try:
    runpy.run_path({train!r}, run_name="__main__")
    code = 0
except SystemExit as exc:
    code = exc.code
sys.stderr.write("\\n@@tensorflow=%s\\n" % ("tensorflow" in sys.modules))
sys.exit(code)
""".format(train=str(REPO / "train.py"))


def train(*args, cwd=REPO, env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    env.pop("SER_DATA_DIR", None)
    start = time.time()
    result = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True,
                            text=True, timeout=300, cwd=cwd, env=env)
    result.seconds = time.time() - start
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines and lines[-1].startswith("@@tensorflow="), result.stderr
    result.tensorflow = lines[-1] == "@@tensorflow=True"
    result.stderr = "\n".join(lines[:-1]).strip("\n")
    return result


def assert_usage_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("train.py: error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    assert not result.tensorflow, "TensorFlow was imported before the error"
    return errors[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Actors 1-4 of RAVDESS, 4 emotions (32 real files, linked)."""
    root = tmp_path_factory.mktemp("ravdess")
    require(RAVDESS)
    for actor in ("01", "02", "03", "04"):
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[1345]-01-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    return root


def test_every_mistake_is_one_line_before_tensorflow_and_leaves_nothing(corpus, tmp_path):
    out = tmp_path / "run"
    afile = tmp_path / "a_file"
    afile.write_text("x")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("path,emotion,speaker\nété.wav,happy,s1\n".encode("latin-1"))
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    data = ["--data_dir", corpus]
    cnn = REPO / "configs" / "ravdess_cnn4.json"
    cases = [
        (["--dataset", "foo"], ["--dataset: unknown corpus", "Received: dataset='foo'"]),
        (["--dataset", "ravdes", *data], ["did you mean `ravdess`"]),
        (["--model", "foo", *data], ["model.name (--model): unknown model", "Received: name='foo'"]),
        (["--backbone", "foo", *data], ["model.backbone (--backbone) must be one of", "backbone='foo'"]),
        (["--strategy", "quantum"], ["--strategy=quantum", "default|mirrored|multiworker"]),
        (["--mixed_precision", "float8"], ["--mixed_precision=float8"]),
        (["--mixed-precision", "float8"], ["--mixed_precision=float8"]),
        (["--emotions", "angry,hapy", *data], ["--emotions", "'hapy' (did you mean `happy`?)"]),
        (["--emotions", "boredom", *data], ["No utterances left"]),
        (["--weights", "/missing.h5", *data], ["model.weights (--weights): no such file", "/missing.h5"]),
        (["--init_from", tmp_path / "missing.keras", *data], ["training.init_from (--init_from)", "no such file"]),
        (["--init_from", empty, *data], ["a folder without model.keras"]),
        (["--dataset", "csv", "--data_dir", latin1], ["not UTF-8 text"]),
        (["--output_dir", afile / "run", *data], ["output_dir (--output_dir)", "is a file, not a folder"]),
        (["--set", "bogus.key=1"], ["Unknown config key `bogus.key`"]),
        (["--set", "training.segment_epoch=4"], ["did you mean `training.segment_epochs`"]),
        (["--set", "training.epochs=abc"], ["training.epochs must be a whole number >= 1", "epochs='abc'"]),
        (["--set", "training.epochs"], ["--set takes KEY=VALUE"]),
        (["--segment_epochs", "3", *data], ["training.segment_epochs (--segment_epochs) applies to stage 1",
                                            "mode is 'frozen'"]),
        (["--folds", "3", "--protocol", "loso", *data], ["protocol.k (--folds) applies to the kfold"]),
        (["--epochs", "0"], ["--epochs"]),
        (["--init_from", "fast", "--backbone", "cnn4", *data], ["model.backbone (--backbone) is the saved model's"]),
        (["--config", cnn, "--init_from", "default", *data], ["is a model on a pretrained front end",
                                                              "not two_stage"]),
        (["--data_dir", tmp_path / "nowhere"], ["does not exist"]),
        (["--epochz", "3"], ["Unknown command line flag 'epochz'"]),
        (["stray_argument"], ["unexpected argument 'stray_argument'"]),
        # Tried, not guessed from permissions: /proc refuses even root.
        (["--output_dir", "/proc/1/run", *data], ["/proc/1 is not writable"]),
        (["--set", "training.embedding_cache=/proc/forbidden", *data],
         ["training.embedding_cache: /proc/forbidden cannot be created"]),
        # Values that cannot work are refused before anything runs.
        (["--set", "training.learning_rate=1e999", *data], ["learning_rate must be a finite number > 0",
                                                            "learning_rate=inf"]),
        (["--learning_rate", "nan", *data], ["learning_rate (--learning_rate) must be a finite number"]),
        (["--set", "training.batch_size=100000000000", "--folds", "2", *data],
         ["training.batch_size (--batch_size) is larger than every training set of these folds (at most 8 "
          "utterances) and than 4096", "batch_size=100000000000"]),
    ]
    for args, fragments in cases:
        if "--output_dir" not in args:
            args = [*args, "--output_dir", out]
        result = train(*args)
        assert_usage_error(result, *fragments)
        assert not out.exists(), args
        assert result.seconds < 30, (args, result.seconds)


def test_read_only_output_dir(corpus, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert_usage_error(train("--data_dir", corpus, "--output_dir", locked / "run"), "is not writable")
    finally:
        locked.chmod(0o755)


def test_print_config_applies_flags_then_set(tmp_path):
    result = train("--config", REPO / "configs" / "ravdess_cnn4.json", "--segment-epochs", "4",
                   "--segment_batch_size", "32", "--epochs", "7", "--nofinal_model",
                   "--set", "training.segment_dropout=0.2", "--set", "model.dense_units=[64, 32]",
                   "--set", "training.optimizer=adamw", "--set", "training.epochs=9",
                   "--print_config")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    training = config["training"]
    assert (training["segment_epochs"], training["segment_batch_size"], training["segment_dropout"]) == (4, 32, 0.2)
    assert training["epochs"] == 9  # --set comes after the named flags
    assert training["optimizer"] == "adamw" and training["final_model"] is False
    assert config["model"]["dense_units"] == [64, 32]
    assert not result.tensorflow

    defaults = json.loads(train("--print_config").stdout)["training"]
    assert defaults["init_from"] is None and defaults["final_model"] is True
    result = train("--init-from", "fast", "--final-model", "--print_config")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["training"]["init_from"] == "fast"


def test_features_chooses_a_classical_models_feature_set():
    result = train("--model", "svm", "--features", "egemaps", "--set",
                   "training.classical.speaker_normalization=true", "--print_config")
    assert result.returncode == 0, result.stderr
    classical = json.loads(result.stdout)["training"]["classical"]
    assert classical == {"features": "egemaps", "speaker_normalization": True}
    assert_usage_error(train("--model", "svm", "--features", "gemaps"),
                       "training.classical.features (--features): Unknown feature set; known: "
                       "statistics, egemaps, compare. Received: feature_set='gemaps'")
    assert_usage_error(train("--features", "compare"),
                       "--features chooses the feature set of a classical model",
                       "model 'speechmodel' takes the config's features section")


def test_flags_that_change_the_model_leave_the_file_keys_they_make_unused():
    # --model svm over the recipe: its deep-training keys are not used by a
    # classical model, so they are left at their defaults (said once).
    result = train("--model", "svm", "--print_config")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["model"] == {"name": "svm", "weights": None}
    assert config["training"]["mode"] == "end_to_end" and config["training"]["optimizer"] == "adam"
    assert "Left at their defaults" in result.stderr and "training.mode='frozen'" in result.stderr
    # ... but a flag the run would not use is refused.
    assert_usage_error(train("--model", "svm", "--epochs", "3"), "training.epochs (--epochs) applies to the deep models")
    # --backbone cnn4 over the Whisper recipe: the paper's two stages; the
    # front end's head key is left out.
    result = train("--backbone", "cnn4", "--segment_epochs", "2", "--print_config")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["training"]["mode"] == "two_stage" and config["training"]["segment_epochs"] == 2
    assert "input_dropout" not in config["model"]


def test_a_folder_without_config_gets_the_recommended_recipe(tmp_path):
    from speechmodel.training.config import recipe_config

    result = train("--dataset", "folder", "--data_dir", tmp_path, "--print_config")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    recipe = recipe_config()
    assert {k: config[k] for k in ("features", "model", "training")} == {
        k: recipe[k] for k in ("features", "model", "training")}
    assert config["dataset"]["name"] == "folder" and config["dataset"]["data_dir"] == str(tmp_path)
    said = [line for line in result.stderr.splitlines() if "recommended recipe" in line]
    assert len(said) == 1 and "configs/ravdess.json" in said[0]
    # A corpus with its own config gets it, silently.
    result = train("--dataset", "emodb", "--print_config")
    assert json.loads(result.stdout)["model"]["backbone"] == "alexnet"
    assert "recommended recipe" not in result.stderr


def test_dry_run_checks_the_corpus_and_writes_nothing(corpus, tmp_path):
    out = tmp_path / "run"
    result = train("--data-dir", corpus, "--output-dir", out, "--emotions", "angry,happy,neutral,sad",
                   "--folds", "2", "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "all checks passed" in result.stdout and str(out) in result.stdout
    assert not out.exists() and not result.tensorflow
    # --data_dir and --data-dir are the same flag: the same experiment.
    a = json.loads(train("--data_dir", corpus, "--epochs", "30", "--print_config").stdout)
    b = json.loads(train("--data-dir", corpus, "--epochs", "30", "--print_config").stdout)
    assert a == b and a["training"]["epochs"] == 30 and a["dataset"]["data_dir"] == str(corpus)


def test_help_names_the_new_flags():
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "--help"], capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0
    for flag in ("--set", "--segment_epochs", "--segment_batch_size", "--init_from", "--[no]final_model",
                 "--dry_run", "Epochs of the head"):
        assert flag in result.stdout, flag


def test_csv_dataset_takes_the_csv_file_itself(corpus, tmp_path):
    manifest = tmp_path / "my_corpus.csv"
    rows = ["path,emotion,speaker"]
    names = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry"}
    for wav in sorted(corpus.glob("Actor_*/*.wav")):
        rows.append(f"{wav},{names[wav.name.split('-')[2]]},{wav.parent.name}")
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    result = train("--dataset", "csv", "--data_dir", manifest, "--output_dir", out, "--folds", "2",
                   "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "all checks passed" in result.stdout
    assert not out.exists() and not result.tensorflow


def test_val_speakers_is_a_count_or_speaker_ids():
    count = json.loads(train("--val_speakers", "2", "--print_config").stdout)
    ids = json.loads(train("--val-speakers", "09", "--print_config").stdout)
    assert count["protocol"]["val_speakers"] == 2
    assert ids["protocol"]["val_speakers"] == ["09"]  # a leading zero: a speaker, not nine

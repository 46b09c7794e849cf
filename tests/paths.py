"""Where the tests find the real corpora and weights: ../shared beside the
checkout (or the folders named by SER_TEST_RAVDESS, SER_TEST_NEMO and
SER_TEST_WEIGHTS).

Without them (a user's checkout) the tests that need them skip, with a
reason that names the missing folder: every accessor here calls
``require``, which skips the calling test, or the whole module when called
at import.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SHARED = REPO.parent / "shared"
RAVDESS = Path(os.environ.get("SER_TEST_RAVDESS", SHARED / "data" / "ravdess")).resolve()
NEMO = Path(os.environ.get("SER_TEST_NEMO", SHARED / "data" / "nemo")).resolve()
WEIGHTS = Path(os.environ.get("SER_TEST_WEIGHTS", SHARED / "weights")).resolve()
# The ONNX conversions of the shipped models, built once (minutes) and kept
# across test runs, apart from a user's cache.
ONNX_CACHE = os.path.expanduser(
    os.environ.get("SPEECHMODEL_TEST_ONNX_CACHE") or os.path.join("~", ".cache", "speechmodel-test-onnx")
)
EMOSPEECH = Path(os.environ.get("SER_TEST_EMOSPEECH", SHARED / "data" / "emospeech")).resolve()

_WHERE = {
    RAVDESS: "the real RAVDESS corpus (../shared/data/ravdess beside the checkout, or SER_TEST_RAVDESS)",
    NEMO: "the real nEMO corpus (../shared/data/nemo beside the checkout, or SER_TEST_NEMO)",
    EMOSPEECH: "the real EmoSpeech corpus (../shared/data/emospeech beside the checkout, or SER_TEST_EMOSPEECH)",
    WEIGHTS: "the ImageNet AlexNet weights (../shared/weights beside the checkout, or SER_TEST_WEIGHTS)",
}


def require(path, what=None):
    """Skips the calling test (or module, at import) unless ``path`` exists."""
    path = Path(path)
    if not path.exists():
        what = what or next((w for root, w in _WHERE.items() if path == root or root in path.parents), "")
        pytest.skip(f"needs {what or path}: not found at {path}", allow_module_level=True)
    return path


def ravdess_files(pattern="Actor_*/*.wav"):
    require(RAVDESS)
    files = sorted(str(p) for p in RAVDESS.glob(pattern))
    if not files:
        raise FileNotFoundError(f"No RAVDESS file matches {pattern!r} in {RAVDESS}.")
    return files


def small_ravdess(root, actors=("01", "02", "03", "04")):
    """A RAVDESS-layout folder at ``root`` of links to 4 real files per
    actor (neutral and angry, two sentences): a corpus for short trainings."""
    require(RAVDESS)
    for actor in actors:
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[15]-01-0[12]-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    assert len(list(root.glob("Actor_*/*.wav"))) == 4 * len(actors)
    return root


def nemo_dir():
    """The real nEMO folder (data.tsv + samples/); skips the test if absent."""
    require(NEMO / "data.tsv", _WHERE[NEMO])
    return NEMO


def save_tiny_model(path, class_names, *, seed):
    """A tiny random-weight SpeechModel (AlexNet-GAP) saved as an
    ``EmotionRecognizer`` at ``path``: what the CLI and stream tests run."""
    import keras

    from speechmodel.models.recognizer import EmotionRecognizer
    from speechmodel.models.speech_model import SpeechModel

    keras.utils.set_random_seed(seed)
    recognizer = EmotionRecognizer(
        SpeechModel(len(class_names), backbone="alexnet_gap", lstm_units=8,
                    attention_units=8, dense_units=[8]),
        class_names=list(class_names),
    )
    recognizer.save(path)
    return path


def emospeech_dir():
    """The real EmoSpeech copy (data.csv + location folders); skips the test if absent."""
    require(EMOSPEECH / "data.csv", _WHERE[EMOSPEECH])
    return EMOSPEECH

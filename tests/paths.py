"""Where the tests find the real corpora: ../shared/data beside the checkout."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
RAVDESS = Path(
    os.environ.get("SER_TEST_RAVDESS", REPO.parent / "shared" / "data" / "ravdess")
).resolve()


def ravdess_files(pattern="Actor_*/*.wav"):
    files = sorted(str(p) for p in RAVDESS.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"The real RAVDESS files are expected at {RAVDESS} "
            "(../shared/data/ravdess beside the checkout, or SER_TEST_RAVDESS)."
        )
    return files


def small_ravdess(root, actors=("01", "02", "03", "04")):
    """A RAVDESS-layout folder at ``root`` of links to 4 real files per
    actor (neutral and angry, two sentences): a corpus for short trainings."""
    for actor in actors:
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[15]-01-0[12]-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    assert len(list(root.glob("Actor_*/*.wav"))) == 4 * len(actors)
    return root


NEMO = Path(
    os.environ.get("SER_TEST_NEMO", REPO.parent / "shared" / "data" / "nemo")
).resolve()


def nemo_dir():
    """The real nEMO folder (data.tsv + samples/); FileNotFoundError if absent."""
    if not (NEMO / "data.tsv").is_file():
        raise FileNotFoundError(
            f"The real nEMO corpus is expected at {NEMO} "
            "(../shared/data/nemo beside the checkout, or SER_TEST_NEMO)."
        )
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

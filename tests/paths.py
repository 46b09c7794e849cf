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

"""Saving and loading ClassicalModel without executing code from the file.

pickle and joblib files run arbitrary code when loaded, so a model file is
instead a zip archive holding

- ``meta.json``: format version, the model's configuration (classifier
  name, parameters, class names, feature configuration, seed), the feature
  names and the library versions that wrote it;
- ``model.skops``: the fitted scikit-learn pipeline in the ``skops.io``
  format, which rebuilds objects from a JSON schema and refuses any type
  that it is not told to trust.

Loading trusts skops' defaults (scikit-learn estimators, numpy, builtins)
plus the explicit ``TRUSTED_TYPES`` below (the tree, neighbour-index and
optimizer internals of the registered classifiers). A file that is not such
an archive, or whose pipeline holds any other type (a function such as
``os.system``, a custom class), raises ``UnsafeModelError`` before any
object is built.
"""

import io
import json
import os
import warnings
import zipfile

import numpy as np
import sklearn

from speechmodel import fileio
from speechmodel.classical.classifiers import ClassicalModel
from speechmodel.classical.registry import get_spec
from speechmodel.errors import Error

FORMAT = "speechmodel.classical"
FORMAT_VERSION = 1
_META = "meta.json"
_MODEL = "model.skops"

# Internals of the registered classifiers that skops does not trust by default.
TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)


class UnsafeModelError(Error, ValueError):
    """A model file that is not a trusted speechmodel classical model."""


def save_model(model, path):
    """Writes a fitted ClassicalModel to ``path`` (a zip archive).

    Args:
        model: fitted ClassicalModel.
        path: destination file (conventionally ``*.skz``); parent
            directories are created. Written atomically.
    """
    import skops
    import skops.io as sio

    if not isinstance(model, ClassicalModel):
        raise ValueError(
            f"save_model takes a ClassicalModel. Received: {type(model).__name__}"
        )
    if not model.is_fitted:
        raise ValueError(f"Cannot save an unfitted ClassicalModel ({model.name}).")
    path = os.fspath(path)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": {**model.get_config(), "params": model.chosen_params_},
        "feature_names": model.feature_names,
        "grid_result": (
            model.grid_result_.to_dict() if model.grid_result_ is not None else None
        ),
        "versions": {
            "scikit-learn": sklearn.__version__,
            "skops": skops.__version__,
            "numpy": np.__version__,
        },
    }
    blob = sio.dumps(model.pipeline_)
    with fileio.atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_META, json.dumps(meta, indent=2, sort_keys=True))
            zf.writestr(_MODEL, blob)


def read_metadata(path):
    """The ``meta.json`` of a model file (no model object is built)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise UnsafeModelError(
            f"{path}: not a speechmodel classical model (expected a zip "
            "archive with meta.json and model.skops; pickle/joblib files are "
            "never loaded because loading them executes code)"
        )
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if names != {_META, _MODEL}:
            raise UnsafeModelError(
                f"{path}: expected exactly {sorted([_META, _MODEL])} in the "
                f"archive. Received: {sorted(names)}"
            )
        try:
            meta = json.loads(zf.read(_META).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UnsafeModelError(
                f"{path}: meta.json is not valid JSON ({exc})"
            ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise UnsafeModelError(
            f"{path}: meta.json does not describe a {FORMAT} model. "
            f"Received: format={found!r}"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise UnsafeModelError(
            f"{path}: unsupported format version. This code reads version "
            f"{FORMAT_VERSION}. Received: {meta.get('format_version')!r}"
        )
    return meta


def load_model(path):
    """Loads a model written by ``save_model``, executing nothing from it.

    Args:
        path: the model file.

    Returns:
        fitted ClassicalModel.

    Raises:
        UnsafeModelError: not a model archive, or its pipeline holds types
            outside skops' defaults and ``TRUSTED_TYPES`` (they are listed).
        ValueError: the file is missing or its metadata is inconsistent.
    """
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    path = os.fspath(path)
    meta = read_metadata(path)
    with zipfile.ZipFile(path) as zf:
        blob = zf.read(_MODEL)
    try:
        untrusted = sio.get_untrusted_types(data=blob)
    except Exception as exc:  # Not a skops archive at all.
        raise UnsafeModelError(
            f"{path}: model.skops is not a valid skops file "
            f"({type(exc).__name__}: {exc})"
        ) from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise UnsafeModelError(
            f"{path}: refusing to load types that are not trusted: {refused}"
        )
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path}: meta.json has no model config")
    try:
        get_spec(config.get("name"))
        model = ClassicalModel.from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: invalid model config in meta.json ({exc})") from None
    saved = meta.get("versions", {}).get("scikit-learn")
    if saved != sklearn.__version__:
        warnings.warn(
            f"{path} was written by scikit-learn {saved}; this is "
            f"{sklearn.__version__}. Predictions may differ.",
            stacklevel=2,
        )
    with io.BytesIO(blob) as f:
        pipeline = sio.load(f, trusted=list(untrusted))
    if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != [
        "scale",
        "clf",
    ]:
        raise UnsafeModelError(
            f"{path}: model.skops does not hold a scale + clf Pipeline. "
            f"Received: {type(pipeline).__name__}"
        )
    n_in = getattr(pipeline, "n_features_in_", None)
    names = model.feature_names
    if n_in != len(names) or meta.get("feature_names") != names:
        raise ValueError(
            f"{path}: the pipeline takes {n_in} features but the saved "
            f"feature configuration gives {len(model.feature_names)}"
        )
    classes = np.asarray(pipeline.classes_)
    if classes.min() < 0 or classes.max() >= len(model.class_names):
        raise ValueError(
            f"{path}: the pipeline's classes {classes.tolist()} do not fit "
            f"{len(model.class_names)} class names"
        )
    model.pipeline_ = pipeline
    model.chosen_params_ = dict(model.params)
    return model

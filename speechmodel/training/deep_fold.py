"""One fold of a deep model (:func:`run_deep_fold`): built (or loaded to
fine-tune), trained in its mode (end to end here; two_stage and frozen in
``speechmodel.training.two_stage``, finetune in
``speechmodel.training.fine_tune``), then tested and saved as a
``model.keras`` recognizer.

``training.init_from`` (``--init_from MODEL.keras``, a shipped model's name
or a run directory) fine-tunes a saved model instead of building one: its
feature settings replace the config's (:func:`adopt_init_from`); with
another label set, its output layer is rebuilt for the run's classes (a
class the model knew keeps its output weights, a new one starts afresh;
every other weight is kept).
"""

import os
import time
import warnings

import numpy as np

from speechmodel.training import artifacts, run_log
from speechmodel.training.folds import RunError, fold_data, fold_result


def run_deep_fold(config, manifest, test_manifest, fold, number, class_names, fold_dir, *,
                   reporter=None, label=None):
    import keras

    from speechmodel import distribute, precision
    from speechmodel.config import FeatureConfig
    from speechmodel.models.recognizer import EmotionRecognizer
    from speechmodel.models.registry import build_model
    from speechmodel.pipeline import EpochCounter, FailureLog, make_dataset
    from speechmodel.training.callbacks import EpochTimer, best_epoch_figures, fit_callbacks, quiet_fit
    from speechmodel.training.optimizers import make_loss, make_optimizer
    from speechmodel.training.uar_metric import SparseAccuracy, UnweightedAverageRecall

    start = time.time()
    training = config["training"]
    seed = int(training["seed"]) + number
    keras.utils.set_random_seed(seed)
    precision.set_precision(training["mixed_precision"])
    strategy = distribute.get_strategy(training["strategy"])
    batch_size, learning_rate = distribute.scale_batch_and_lr(
        training["batch_size"], training["learning_rate"], strategy
    )
    features = FeatureConfig.from_dict(config["features"])
    data = fold_data(manifest, test_manifest, fold, class_names, config)
    # Kept with the backup: a resumed fold reports the files an earlier
    # attempt could not read, though it need not read them again.
    failures = FailureLog(os.path.join(fold_dir, "backup", "failures.json"))
    waveform_augment = features_augment = mixup = None
    if training.get("augment"):
        from speechmodel.augment.settings import Augmentation
        from speechmodel.augment.spectrogram import build_features_augment
        from speechmodel.augment.waveform import build_waveform_augment

        settings = Augmentation.from_dict(training["augment"])
        waveform_augment = build_waveform_augment(
            training["augment"], sample_rate=features.sample_rate
        )
        features_augment = build_features_augment(training["augment"], feature_config=features)
        mixup = settings.mixup
    reporter = reporter or run_log.quiet_reporter()
    label = label or f"fold {fold.name}"
    model_config = dict(config["model"])
    name = model_config.pop("name")
    with strategy.scope():
        if training.get("init_from"):
            model = _initial_model(training["init_from"], class_names, reporter.say)
        else:
            try:
                model = build_model(
                    name, num_classes=len(class_names), feature_config=features.to_dict(),
                    **model_config,
                )
            except ValueError as exc:  # unknown argument, weights unavailable offline, ...
                raise RunError(f"Cannot build model {name!r}: {exc}") from None
        model.compile(
            optimizer=make_optimizer(training, learning_rate, model=model),
            loss=make_loss(training, one_hot=mixup is not None, label_sets=data.get("label_sets")),
            metrics=[
                SparseAccuracy(len(class_names)) if mixup is None else "categorical_accuracy",
                UnweightedAverageRecall(len(class_names)),
            ],
        )
    common = {"config": features, "batch_size": batch_size, "failures": failures}
    if _takes_waveforms(config, model):
        common["outputs"] = "waveforms"
    extra = {"epochs": training["epochs"], "mode": training["mode"]}
    if training["mode"] == "finetune":
        from speechmodel.training import fine_tune

        extra.update(
            fine_tune.train(
                model, config, data, class_names, fold_dir, seed, strategy, batch_size,
                learning_rate, failures, progress=reporter, label=label, key=fold.name,
            )
        )
    elif training["mode"] in ("two_stage", "frozen"):
        from speechmodel.training import two_stage

        extra.update(
            two_stage.train(
                model, config, data, class_names, fold_dir, seed, strategy, batch_size,
                learning_rate, failures, waveform_augment=waveform_augment,
                features_augment=features_augment, progress=reporter, label=label,
                key=fold.name,
            )
        )
    else:
        cache = training.get("cache") or None
        # Each epoch's order and augmentation: a function of (seed, epoch).
        epoch = EpochCounter()
        train_ds = make_dataset(
            *data["train"], training=True, seed=seed, cache=cache,
            waveform_augment=waveform_augment, features_augment=features_augment,
            epoch=epoch, **common,
        )
        if mixup is not None:
            from speechmodel.augment.mixup import apply_mixup

            train_ds = apply_mixup(
                train_ds, alpha=mixup.alpha, num_classes=len(class_names), seed=seed, p=mixup.p,
                epoch=epoch,
            )
        val_ds = make_dataset(*data["val"], cache=cache, **common) if len(fold.val) else None
        callbacks, monitor = fit_callbacks(
            fold_dir, val_ds, class_names=class_names, training=training, epoch=epoch
        )
        timer = EpochTimer()
        fit_start = time.time()
        reporter.say(f"{label}: end to end, {run_log.count(training['epochs'], 'epoch')}")
        report = reporter.fit(label, training["epochs"], key=(fold.name, "end_to_end"))
        with quiet_fit():
            model.fit(
                train_ds, epochs=training["epochs"], callbacks=[*callbacks, timer, report],
                class_weight=data["class_weight"], verbose=0,
            )
        extra["fit_seconds"] = time.time() - fit_start
        extra["seconds_per_epoch"] = timer.median()
        extra.update(best_epoch_figures(monitor, training))
    history = artifacts.read_csv_log(os.path.join(fold_dir, "history.csv"))
    if history:
        artifacts.plot_curves(
            artifacts.staged(fold_dir, "curves.png"), history,
            title=label if fold.name == "final" else fold.name,
            monitor=training["monitor"], best_epoch=extra.get("best_epoch"),
        )
    def predict(split, what):
        chunks, kept = [], []
        count = reporter.count(f"{label}: predicting the {what}", len(data[split][0]))
        for x, _, index in make_dataset(*data[split], with_index=True, **common):
            out = model(x, training=False)
            out = out["probabilities"] if isinstance(out, dict) else out
            chunks.append(np.asarray(out, dtype=np.float64))
            kept.extend(np.asarray(index).tolist())
            count.update(len(kept))
        count.close()
        return (np.concatenate(chunks) if chunks else np.zeros((0, len(class_names)))), kept

    probabilities, kept = np.zeros((0, len(class_names))), []
    if "test_predictions" in extra:  # classified from the cached embeddings
        probabilities, kept = extra.pop("test_predictions")
    elif len(fold.test):
        probabilities, kept = predict("test", "test speakers")
    # Calibration: one temperature, fitted on the validation speakers (as
    # the saved model classifies single recordings), its figures reported;
    # kept in the model with training.calibrate.
    validation = extra.pop("val_predictions", None)
    if validation is None and len(fold.val):
        validation = predict("val", "validation speakers")
    extra["calibration"] = _calibration(validation, data["val"][1])
    if extra["calibration"] is not None:
        extra["calibration"]["stored"] = bool(training.get("calibrate"))
    recognizer = EmotionRecognizer(
        model, feature_config=features.to_dict(), class_names=class_names,
        temperature=(extra["calibration"] or {}).get("temperature") if training.get("calibrate") else None,
    )
    _save_keras(recognizer, artifacts.staged(fold_dir, "model.keras"))
    extra["failed_files"] = [list(f) for f in failures.failures]
    extra["seconds"] = time.time() - start
    precision.set_precision("float32")
    return fold_result(fold, data, class_names, probabilities, kept, extra)


def _calibration(validation, labels):
    """``{"temperature", "val": figures before and after}`` fitted on the
    validation predictions ``(probabilities, kept positions)``, or None
    without validation utterances."""
    from speechmodel.calibration import calibration_figures, fit_temperature

    if validation is None or not len(validation[1]):
        return None
    probabilities, kept = validation
    truth = np.asarray(labels)[np.asarray(kept, np.int64)]
    temperature = fit_temperature(probabilities, truth)
    return {"temperature": temperature, "val": calibration_figures(probabilities, truth, temperature)}


def _takes_waveforms(config, model=None):
    from speechmodel.models.frontends import is_front_end

    if model is not None and config["training"].get("init_from"):
        from speechmodel.models.recognizer import takes_waveforms

        return takes_waveforms(model)
    return config["model"]["name"] == "speechmodel" and is_front_end(config["model"].get("backbone"))


# ------------------------------------------------------------ init_from


def init_from_path(spec):
    """The ``.keras`` file ``training.init_from`` names: a path, a shipped
    model's name (``default``, ``fast``) or a run directory."""
    from speechmodel.inference.loading import resolve_model

    try:
        path = resolve_model(spec)
    except ValueError as exc:
        raise RunError(f"training.init_from: {exc}") from None
    if not (path.endswith(".keras") and os.path.isfile(path)):
        raise RunError(
            "training.init_from (--init_from) takes a saved .keras model, a shipped model's "
            f"name or a run directory holding model.keras. Received: init_from={spec!r}"
        )
    return path


def saved_model_config(path):
    """``(classifier's serialized config, feature config, class names)`` of
    a saved ``EmotionRecognizer``, read from the file without building it.

    Raises:
        RunError: the file cannot be read, or is a ``.keras`` file of some
            other model (says which).
    """
    import json
    import zipfile

    def refused(reason):
        return RunError(
            f"training.init_from: {path} is not a model saved by this toolkit "
            f"(a .keras EmotionRecognizer): {reason}. Received: init_from={path!r}"
        )

    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("config.json") if "config.json" in archive.namelist() else None
        saved = None if text is None else json.loads(text)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise refused(exc) from None
    if saved is None:
        raise refused("it holds no config.json")
    config = saved.get("config") if isinstance(saved, dict) else None
    classifier = config.get("classifier") if isinstance(config, dict) else None
    if not isinstance(classifier, dict) or not isinstance(classifier.get("config"), dict):
        kind = saved.get("class_name") if isinstance(saved, dict) else None
        raise refused(f"its config.json describes {kind or 'something else'}, with no classifier to fine-tune")
    return classifier, dict(config.get("feature_config") or {}), list(config.get("class_names") or [])


def adopt_init_from(config):
    """With ``training.init_from``: the config's features become the saved
    model's (the model was trained on them) and its ``model`` section names
    the saved model (``name`` and ``backbone``: its CNN or front end), not
    a model this run would build. Changes ``config`` in place; returns it."""
    spec = config["training"].get("init_from")
    if not spec:
        return config
    path = init_from_path(spec)
    classifier, features, _ = saved_model_config(path)
    if features:
        config["features"] = dict(config["features"], **features)
    settings = classifier["config"]
    kind = classifier.get("class_name")
    backbone = settings.get("backbone") or ((settings.get("embedder") or {}).get("config") or {}).get("weights")
    if kind == "AudioSpeechModel" and config["training"]["mode"] == "two_stage":
        raise RunError(
            f"training.init_from: {path} is a model on a pretrained front end ({backbone}); it "
            "fine-tunes with --mode frozen (the head on cached embeddings) or end_to_end, not "
            "two_stage. Received: mode='two_stage'"
        )
    tuned = ((settings.get("embedder") or {}).get("config") or {}).get("fine_tune_blocks") or 0
    if config["training"]["mode"] == "finetune" and not (kind == "AudioSpeechModel" and tuned):
        raise RunError(
            f"training.init_from: {path} has no encoder blocks to fine-tune from cached states "
            "(--mode finetune continues a model saved by a finetune run); --mode frozen trains "
            f"its head. Received: mode='finetune', init_from={spec!r}"
        )
    name = "speechmodel" if kind in ("SpeechModel", "AudioSpeechModel") else config["model"]["name"]
    config["model"] = {"name": name, "backbone": backbone} if backbone else {"name": name}
    return config


def _initial_model(spec, class_names, say):
    """The classifier of a saved model, to fine-tune: as saved when its
    classes are ``class_names`` (same order), else rebuilt for
    ``class_names`` with every weight copied; in the output layer, a class
    the saved model knows keeps its weights, a new class starts afresh."""
    from speechmodel.inference.loading import load_keras_model

    path = init_from_path(spec)
    try:
        with warnings.catch_warnings():  # A model saved with its optimizer: not needed.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            recognizer = load_keras_model(path)
    except Exception as exc:  # noqa: BLE001 (any loading failure: one message)
        raise RunError(f"training.init_from: cannot load {path}: {exc}") from None
    classifier = recognizer.classifier
    saved = [str(c) for c in getattr(recognizer, "class_names", [])]
    if saved == list(class_names):
        say(f"Fine-tuning {path} (its {len(saved)} classes: {', '.join(saved)})")
        return classifier
    config = classifier.get_config()
    if "num_classes" not in config:
        raise RunError(
            f"training.init_from: {path} has the classes {saved}, this run {list(class_names)}, "
            f"and its classifier ({type(classifier).__name__}) cannot change its output layer."
        )
    config["num_classes"] = len(class_names)
    fresh = type(classifier).from_config(config)
    columns = [saved.index(c) if c in saved else None for c in class_names]
    _copy_weights(classifier, fresh, columns)
    known = [c for c in class_names if c in saved]
    new = [c for c in class_names if c not in saved]
    say(
        f"Fine-tuning {path} on a new label set: {', '.join(class_names)} (the model had "
        f"{', '.join(saved) or 'unnamed classes'}); every weight kept"
        + (f", the output weights of {', '.join(known)} too" if known else "")
        + (f"; {', '.join(new)} start{'s' if len(new) == 1 else ''} afresh" if new else "")
    )
    return fresh


def _copy_weights(source, target, columns):
    """Copies the weights of ``source`` into ``target``: the same
    architecture, another output layer (layers ``logits``,
    ``segment_logits``), whose class ``j`` takes the saved class
    ``columns[j]`` (``None``: keeps its fresh values). Weights are matched
    in order (auto-generated layer names differ between two builds)."""
    import keras

    if len(source.weights) != len(target.weights):
        raise RunError(
            f"training.init_from: the saved {type(source).__name__} has {len(source.weights)} "
            f"weights, rebuilt for the new classes {len(target.weights)}; cannot transfer them."
        )
    for old, weight in zip(source.weights, target.weights):
        if weight.path.split("/")[-2:-1] in (["logits"], ["segment_logits"]):
            value = keras.ops.convert_to_numpy(weight.value).copy()
            previous = keras.ops.convert_to_numpy(old.value)
            for j, k in enumerate(columns):
                if k is not None:
                    value[..., j] = previous[..., k]
            weight.assign(value)
        elif tuple(old.shape) == tuple(weight.shape):
            weight.assign(old.value)
        else:
            raise RunError(
                f"training.init_from: weight {weight.path} is {tuple(old.shape)} in the saved "
                f"model and {tuple(weight.shape)} rebuilt; cannot transfer it."
            )


def _save_keras(model, path):
    from speechmodel.fileio import atomic_path

    with atomic_path(path) as tmp:
        model.save(tmp)

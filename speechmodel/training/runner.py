"""The experiment loop: folds, training, evaluation, artifacts, resume.

``run_experiment(config)`` runs one experiment described by a config (see
``speechmodel.training.config``) and leaves a run directory::

    config.json        the resolved config (data; flags already applied)
    manifest.csv       every utterance used, with its speaker and emotion
    folds.json         the speakers (and utterances) of every fold
    train.log          the log of the run
    folds/<fold>/      per fold: history.csv, tensorboard/, curves.png,
                       best.weights.h5, model.keras, predictions.csv,
                       result.json (written last: the fold is done)
    predictions.csv    every test utterance: file, speaker, fold, true,
                       predicted, p_<class>...
    metrics.json       UAR, WA, per-class recall, confusion matrix (pooled
                       over all test utterances), per-fold figures, protocol
    confusion.png      the pooled confusion matrix
    model.keras        the deployable model, for infer.py --model: one-fold
                       protocols ("all", "holdout"): a copy of the fold's;
                       cross-validated protocols: the final model, trained
                       after the folds on every speaker with the same
                       settings (``training.final_model``, on by default; its
                       validation speakers are chosen among them as for
                       the "all" protocol) in final/, laid out as a fold

Speaker independence: the test speakers of a fold are used once, to predict
at the end of that fold. Early stopping, the learning-rate schedule and the
checkpoint choice look only at the validation speakers, who are training
speakers of the protocol (``datasets.protocols``).

Progress: a header per fold and stage, one line per epoch (with the run's
elapsed and estimated remaining time), a bar within the epoch on a
terminal, a line when a fold resumes (``speechmodel.progress``).

``training.init_from`` (``--init_from MODEL.keras``, a shipped model's name
or a run directory) fine-tunes a saved model instead of building one: its
feature settings replace the config's; with another label set, its output
layer is rebuilt for the run's classes (a class the model knew keeps its
output weights, a new one starts afresh; every other weight is kept).

Resume: a fold whose ``result.json`` exists is not run again (the final
model likewise); a fold that was interrupted continues from its last
committed epoch, exactly: the backup
(``callbacks.AtomicBackupAndRestore``) restores the weights, the optimizer,
every random state and the callbacks' state, and each epoch's data is a
function of (seed, epoch), so a killed and resumed run gives the same numbers
as an uninterrupted one. Running the same command again after a kill does
exactly that.

One run at a time per directory: the run holds a lock on it
(``artifacts.lock_directory``); a second run into the same directory says
which process holds it and stops. A fold's result files, and the run's,
appear together or not at all (``artifacts.commit_results``). A full disk
stops the run with one line (every committed epoch and every row of
``history.csv`` kept); the same command resumes once there is space.
"""

import contextlib
import dataclasses
import errno
import logging as std_logging
import os
import shutil
import sys
import time
import warnings

from absl import logging
import numpy as np

from speechmodel.metrics import compute_metrics
from speechmodel.training import artifacts
from speechmodel.training.config import ConfigError, default_output_dir, digest, resolve
from speechmodel.errors import Error

# TensorFlow's C++ log lines (an OUT_OF_RANGE "Local rendezvous is aborting"
# at the end of every epoch, type-inference and oneDNN notes) say nothing a
# person training a model can act on. Set before TensorFlow is imported (the
# runner imports it lazily); TF_CPP_MIN_LOG_LEVEL set by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# The run's own lines: to the run's train.log (and stdout), not to absl's
# stderr handler on the root logger. Library warnings reach train.log
# through the root logger.
_LOG = std_logging.getLogger("speechmodel.run")
_LOG.propagate = False
_LOG.setLevel(std_logging.INFO)


class RunError(Error, RuntimeError):
    """An experiment that cannot start; the message says why and what to do."""


# ----------------------------------------------------------------- data


def load_manifests(config):
    """The (train) manifest, an optional cross-corpus test manifest, and
    the class names.

    Several corpora (``dataset.corpora``, or ``--dataset ravdess,nemo
    --data_dir A,B``) are loaded one by one and joined with
    ``Manifest.concat``: speakers become ``<corpus>/<speaker>``. Classes:
    with the ``loco`` protocol, the emotions that every corpus has; with any
    other protocol, the union of the corpora's emotions. ``dataset.emotions``
    (``--emotions``) restricts either; a corpus left without utterances is an
    error.
    """
    from speechmodel import datasets
    from speechmodel.training.config import corpus_specs

    section = config["dataset"]

    def load(name, data_dir, options):
        try:
            name = datasets.corpus_name(name)
        except ValueError as exc:
            raise RunError(str(exc)) from None
        if not data_dir:
            raise RunError(
                f"No data directory for corpus {name!r}: pass --data-dir (or set "
                f"SER_DATA_DIR).\n{_download_hint(name)}"
            )
        if not os.path.exists(data_dir):  # a folder; for csv, the CSV file itself
            raise RunError(f"Data directory {data_dir} does not exist.\n{_download_hint(name, data_dir)}")
        try:
            return datasets.load(name, data_dir, **options)
        except datasets.CorpusError as exc:
            raise RunError(f"{exc}\n{_download_hint(name, data_dir)}") from None

    try:
        specs = corpus_specs(section)
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    manifests = [load(s["name"], s["data_dir"], s["options"]) for s in specs]
    if len(manifests) == 1:
        manifest = manifests[0]
    else:
        source = {}
        for spec, part in zip(specs, manifests):
            for corpus in part.corpora():
                if corpus in source:
                    raise RunError(
                        f"Corpus {corpus!r} is in both {source[corpus]} and {spec['data_dir']}: "
                        "its speakers would count twice and could be in training and test."
                    )
                source[corpus] = spec["data_dir"]
        try:
            manifest = datasets.Manifest.concat(manifests, name="+".join(m.name for m in manifests))
        except ValueError as exc:
            raise RunError(str(exc)) from None
    corpora = manifest.corpora()
    test_manifest = None
    if section.get("test_name"):
        test_manifest = load(section["test_name"], section["test_data_dir"], {})
    emotions = section.get("emotions")
    if emotions:
        if isinstance(emotions, str):
            emotions = datasets.parse_emotions(emotions)
        manifest = manifest.select(emotions=emotions)
        if test_manifest is not None:
            test_manifest = test_manifest.select(emotions=emotions)
    if config["protocol"]["name"] == "loco":
        if len(corpora) < 2:
            raise RunError(
                "The 'loco' protocol (leave one corpus out) needs several corpora, e.g. "
                "--dataset ravdess,nemo --data_dir DIR1,DIR2. Received: "
                f"{', '.join(corpora)}."
            )
        by_corpus = {c: set() for c in corpora}
        for u in manifest:
            by_corpus[u.corpus].add(u.emotion)
        shared = set.intersection(*by_corpus.values())
        if not shared:
            raise RunError(
                "The corpora share no emotion, so 'loco' has nothing to test. Received: "
                + "; ".join(f"{c}: {sorted(e)}" for c, e in by_corpus.items())
            )
        dropped = sorted(set().union(*by_corpus.values()) - shared)
        if dropped:
            logging.info("loco: keeping the emotions every corpus has; left out: %s", dropped)
        manifest = manifest.select(emotions=sorted(shared))
    if len(corpora) > 1:
        empty = sorted(set(corpora) - set(manifest.corpora()))
        if empty:
            raise RunError(
                f"No utterances left in {', '.join(empty)} after selecting emotions "
                f"{emotions or 'shared by every corpus'}; every corpus listed must take part."
            )
    if test_manifest is not None:
        common = datasets.common_emotions(manifest, test_manifest)
        manifest = manifest.select(emotions=common)
        test_manifest = test_manifest.select(emotions=common)
    if len(manifest) == 0:
        raise RunError(f"No utterances left in {section['name']} after selecting emotions {emotions}.")
    class_names = manifest.emotions()
    return manifest, test_manifest, class_names


def _download_hint(name, data_dir=None):
    try:
        from speechmodel import datasets_module

        download = datasets_module("download")
        if name in download.corpora():
            return download.hint(name, to=data_dir)
    except Exception:  # The hint is a courtesy; never mask the real error.
        pass
    return f"See `python -m datasets.download --list` for how to get {name!r}."


def make_protocol_folds(config, manifest, test_manifest):
    from speechmodel import datasets

    section = dict(config["protocol"])
    if section.get("folds"):
        return datasets.read_folds(section["folds"])
    name = section["name"]
    kwargs = {
        "seed": section["seed"],
        "val_speakers": section.get("val_speakers"),
        "random_split": bool(section.get("random_split")),
    }
    # Options of one protocol only: a config written for k-fold can be run
    # with --protocol all or holdout without editing it.
    if name in ("kfold", "multi"):
        kwargs.update(k=section.get("k"), grouping=section.get("grouping"))
    if name == "holdout":
        kwargs["holdout_speakers"] = section.get("holdout_speakers")
    if name == "cross":
        kwargs["test_manifest"] = test_manifest
    try:
        return datasets.make_folds(manifest, name, **kwargs)
    except ValueError as exc:
        raise RunError(f"Cannot make the {name!r} folds: {exc}") from None


# ------------------------------------------------------------ the loop


def run_experiment(config, *, resume=True, log_to_stdout=True):
    """Runs (or resumes) an experiment.

    Args:
        config: a config dict (defaults fill what is missing).
        resume: continue a run directory that holds the same experiment
            (default); ``False`` refuses to touch an existing run.
        log_to_stdout: print the run's lines (headers, one line per epoch,
            one per fold) to stdout, with bars when it is a terminal; the
            run's ``train.log`` has them either way.

    Returns:
        The metrics dict written to ``metrics.json``.
    """
    config = adopt_init_from(resolve(config))
    run_dir = config["output_dir"] or default_output_dir(config)
    config["output_dir"] = run_dir
    try:
        os.makedirs(run_dir, exist_ok=True)
        with artifacts.lock_directory(run_dir, purpose="train.py run"):
            _check_run_dir(run_dir, config, resume)
            artifacts.write_json(os.path.join(run_dir, "config.json"), config)
            with _log_file(os.path.join(run_dir, "train.log")), _quiet_tensorflow():
                return _run(config, run_dir, log_to_stdout)
    except artifacts.DirectoryLocked as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        if not _disk_full(exc):
            raise
        raise RunError(
            f"No space left on device while writing {exc.filename or run_dir}"
            f"{_detail(exc)}. Every finished epoch and fold is kept in {run_dir}: "
            "free some space and run the same command again to resume."
        ) from None


def _disk_full(exc):
    return exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)) or (
        "No space left on device" in str(exc)
    )


def _detail(exc):
    text = " ".join(str(exc.strerror or "").split())
    return f" ({text})" if text and "No space left" not in text else ""


def _check_run_dir(run_dir, config, resume):
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return
    previous = artifacts.read_json(path)
    try:  # a run written before a new config key existed: that key's default
        from speechmodel.training.config import DEFAULTS, merge

        previous = merge(DEFAULTS, {k: v for k, v in previous.items() if k in DEFAULTS})
    except ValueError:
        pass
    if digest(previous) != digest(config):
        raise RunError(
            f"{run_dir} holds a different experiment (its config.json differs from this "
            "one). Choose another --output-dir, or delete that directory to start over."
        )
    if not resume:
        raise RunError(
            f"{run_dir} already holds this experiment. Rerun with --resume to continue it, "
            "or choose another --output-dir."
        )


@contextlib.contextmanager
def _quiet_tensorflow():
    """TensorFlow's Python warnings (tf.function retracing notes) kept out
    of the run's output and log for the run; its errors still show."""
    logger = std_logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, std_logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


class _QuietFileHandler(std_logging.FileHandler):
    """A log file whose write errors (a full disk) print no traceback: the
    run reports the full disk itself, in one line."""

    def handleError(self, record):
        pass


@contextlib.contextmanager
def _log_file(path):
    handler = _QuietFileHandler(path, encoding="utf-8")
    handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = std_logging.getLogger()
    root.addHandler(handler)
    _LOG.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        _LOG.removeHandler(handler)
        handler.close()


def _say(message, to_stdout):
    _LOG.info(message)
    if to_stdout:
        print(message, flush=True)


def _run(config, run_dir, to_stdout):
    from speechmodel import progress

    start = time.time()
    reporter = progress.Reporter(
        lambda message: _say(message, to_stdout), bar=to_stdout and _is_terminal(sys.stdout)
    )
    manifest, test_manifest, class_names = load_manifests(config)
    _say(manifest.summary(), to_stdout)
    manifest.to_csv(os.path.join(run_dir, "manifest.csv"))
    artifacts.set_default_mode(os.path.join(run_dir, "manifest.csv"))  # not mkstemp's 0600
    if test_manifest is not None:
        test_manifest.to_csv(os.path.join(run_dir, "test_manifest.csv"))
        artifacts.set_default_mode(os.path.join(run_dir, "test_manifest.csv"))
    folds = make_protocol_folds(config, manifest, test_manifest)
    from speechmodel import datasets

    datasets.write_folds(folds, manifest, os.path.join(run_dir, "folds.json"))
    artifacts.set_default_mode(os.path.join(run_dir, "folds.json"))
    for fold in folds:
        if not fold.speaker_independent:
            logging.warning(
                "Fold %s is NOT speaker independent (random utterance split): its "
                "figures are not comparable with speaker-independent results.", fold.name
            )
    is_classical = _is_classical(config["model"]["name"])
    final = _final_fold(config, manifest, folds)
    final_dir = os.path.join(run_dir, "final")
    done = [f.name for f in folds if os.path.exists(os.path.join(run_dir, "folds", f.name, "result.json"))]
    if done:
        _say(f"Resuming {run_dir}: {len(done)} of {len(folds)} folds already finished "
             f"({', '.join(done)}).", to_stdout)
    for fold in folds:
        if fold.name not in done:
            _plan(reporter, config, fold.name, is_classical)
    if final is not None and not os.path.exists(os.path.join(final_dir, "result.json")):
        _plan(reporter, config, "final", is_classical)
    results = []
    for number, fold in enumerate(folds, start=1):
        fold_dir = os.path.join(run_dir, "folds", fold.name)
        label = f"fold {number}/{len(folds)}" + ("" if fold.name == f"fold{number}" else f" ({fold.name})")
        result, state = _train_fold(
            config, manifest, test_manifest, fold, number, class_names, fold_dir,
            is_classical=is_classical, reporter=reporter, label=label,
            header=_fold_header(label, fold, test_manifest is not None),
        )
        results.append(result)
        _say(_fold_line(number, len(folds), fold, result, results, state), to_stdout)
    final_result = None
    if final is not None and os.path.exists(os.path.join(final_dir, "result.json")):
        final_result = artifacts.read_json(os.path.join(final_dir, "result.json"))
    metrics = _summarise(config, folds, results, class_names, run_dir, time.time() - start, final=final_result)
    if metrics.get("uar") is not None:
        _say(
            f"{config['dataset']['name']} {config['model']['name']} {config['protocol']['name']}: "
            f"UAR {100 * metrics['uar']:.2f} %  WA {100 * metrics['wa']:.2f} %  "
            f"(pooled over {metrics['n']} test utterances; per-fold UAR "
            f"{100 * metrics['fold_uar_mean']:.2f} +- {100 * metrics['fold_uar_std']:.2f}) -> {run_dir}",
            to_stdout,
        )
    if final is not None and final_result is None:
        # The deployable model: every speaker, the same settings; its own
        # validation speakers (training speakers) choose its epoch.
        label = "final model"
        final_result, state = _train_fold(
            config, manifest, None, final, len(folds) + 1, class_names, final_dir,
            is_classical=is_classical, reporter=reporter, label=label,
            header=(
                f"{label}: every speaker after the {len(folds)} folds, the same settings: "
                + (
                    f"{len(final.train) + len(final.val)} utterances "
                    f"({_count(len(final.train_speakers) + len(final.val_speakers), 'speaker')})"
                    if is_classical else
                    f"{len(final.train)} training utterances "
                    f"({_count(len(final.train_speakers), 'speaker')}), validation speakers "
                    f"{_speakers(final.val_speakers)}"
                )
            ),
        )
        metrics = _summarise(
            config, folds, results, class_names, run_dir, time.time() - start, final=final_result
        )
    deployable = _deployable_model(run_dir)
    if deployable:
        what = "the final model, trained on every speaker" if final is not None else "the fold's model"
        _say(f"Deployable model ({what}): {deployable}  (infer.py --model {deployable})", to_stdout)
    elif len(folds) > 1 and not config["training"].get("final_model", True):
        _say("No deployable model: the final model was skipped (--nofinal_model); each fold's "
             f"model is in {os.path.join(run_dir, 'folds', '<fold>', 'model.keras')}.", to_stdout)
    return metrics


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _speakers(speakers, limit=12):
    speakers = list(speakers)
    if not speakers:
        return "none"
    text = ",".join(speakers[:limit])
    return text + (f" and {len(speakers) - limit} more" if len(speakers) > limit else "")


def _fold_header(label, fold, cross):
    test = "test corpus" if cross else f"test speakers {_speakers(fold.test_speakers)}"
    if not fold.test:
        test = "no test speakers"
    return (
        f"{label}: {test}; {len(fold.train)} training utterances "
        f"({_count(len(fold.train_speakers), 'speaker')}), validation speakers "
        f"{_speakers(fold.val_speakers)}"
    )


def _count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _plan(reporter, config, name, is_classical=False):
    """The epochs fold ``name`` will train, by kind (for the time left); a
    classical model's fold counts as one epoch."""
    if is_classical:
        reporter.plan((name, "classical"), 1, "classical")
        return
    training = config["training"]
    if training["mode"] == "two_stage" and training["segment_epochs"] > 0:
        reporter.plan((name, "stage1"), training["segment_epochs"], "stage1")
    kind = "head" if training["mode"] in ("two_stage", "frozen") else "end_to_end"
    reporter.plan((name, kind), training["epochs"], kind)


def _train_fold(config, manifest, test_manifest, fold, number, class_names, fold_dir, *,
                is_classical, reporter, label, header):
    """Runs (or finds done) one fold, or the final model: ``(result, state)``."""
    done = os.path.join(fold_dir, "result.json")
    if os.path.exists(done):
        return artifacts.read_json(done), "done earlier"
    reporter.say(header)
    os.makedirs(fold_dir, exist_ok=True)
    artifacts.discard_staged(fold_dir)  # Of an interrupted attempt.
    test_source = test_manifest if test_manifest is not None else manifest
    runner = _run_classical_fold if is_classical else _run_deep_fold
    result = runner(
        config, manifest, test_source, fold, number, class_names, fold_dir,
        reporter=reporter, label=label,
    )
    # The fold's files (result.json, model, curves) appear together.
    artifacts.write_json(artifacts.staged(fold_dir, "result.json"), result)
    artifacts.commit_results(fold_dir)
    shutil.rmtree(os.path.join(fold_dir, "backup"), ignore_errors=True)
    return result, f"{result['seconds']:.0f} s"


def _final_fold(config, manifest, folds):
    """The split of the final model (every speaker; validation speakers
    among them, as the "all" protocol chooses them), or None: one-fold
    protocols (their fold's model is the deployable one) and
    ``training.final_model`` false."""
    if len(folds) < 2 or not config["training"].get("final_model", True):
        return None
    from speechmodel import datasets

    section = config["protocol"]
    try:
        [fold] = datasets.make_folds(
            manifest, "all", seed=section["seed"], val_speakers=section.get("val_speakers"),
            random_split=bool(section.get("random_split")),
        )
    except ValueError as exc:
        raise RunError(f"Cannot choose the final model's validation speakers: {exc}") from None
    return dataclasses.replace(fold, name="final")


def _deployable_model(run_dir):
    for name in ("model.keras", "model.skz"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            return path
    return None


def _fold_line(number, total, fold, result, results, state):
    if result.get("test") is None:
        return f"[fold {number}/{total} {fold.name}] trained on every speaker ({state})"
    uars = [r["test"]["uar"] for r in results if r.get("test")]
    was = [r["test"]["wa"] for r in results if r.get("test")]
    return (
        f"[fold {number}/{total} {fold.name}] test speakers {','.join(fold.test_speakers)}: "
        f"UAR {100 * result['test']['uar']:.2f} %  WA {100 * result['test']['wa']:.2f} %  "
        f"| running mean UAR {100 * np.mean(uars):.2f} %  WA {100 * np.mean(was):.2f} % ({state})"
    )


def _summarise(config, folds, results, class_names, run_dir, seconds, *, final=None):
    artifacts.discard_staged(run_dir)  # Of an interrupted attempt.
    rows = [row for r in results for row in r.get("predictions", [])]
    per_fold = [
        {
            "fold": r["fold"],
            "train_speakers": r["train_speakers"],
            "val_speakers": r["val_speakers"],
            "test_speakers": r["test_speakers"],
            "counts": r["counts"],
            "uar": r["test"]["uar"] if r.get("test") else None,
            "wa": r["test"]["wa"] if r.get("test") else None,
            "val_uar": r.get("val", {}).get("uar"),
            "best_epoch": r.get("best_epoch"),
            "seconds": r["seconds"],
        }
        for r in results
    ]
    metrics = {
        "dataset": config["dataset"]["name"],
        "model": config["model"]["name"],
        "protocol": config["protocol"],
        "speaker_independent": all(f.speaker_independent for f in folds),
        "class_names": class_names,
        "uar": None,
        "wa": None,
        "folds": per_fold,
        "seconds": seconds,
        "definitions": {
            "uar": "unweighted average recall: mean over classes of per-class recall, "
            "pooled over every test utterance of every fold",
            "wa": "weighted accuracy: correct / total test utterances, pooled",
            "fold_uar_mean": "mean of the per-fold UARs (std is the population std)",
        },
    }
    if rows:
        index = {c: i for i, c in enumerate(class_names)}
        y_true = [index[r["true"]] for r in rows]
        y_pred = [index[r["predicted"]] for r in rows]
        pooled = compute_metrics(y_true, y_pred, class_names=class_names)
        if all("predicted_per_clip" in r for r in rows):
            single = compute_metrics(
                y_true, [index[r["predicted_per_clip"]] for r in rows], class_names=class_names
            )
            metrics["speaker_normalization"] = {
                "uar": pooled["uar"], "wa": pooled["wa"],
                "per_clip_uar": single["uar"], "per_clip_wa": single["wa"],
                "definition": "uar/wa: each test speaker's embeddings standardised with that "
                "speaker's own statistics, over their (unlabelled) test recordings: a "
                "speaker-adapted, transductive figure. per_clip_uar/per_clip_wa: the same model "
                "on single recordings (an average training speaker's statistics), as "
                "infer.py runs it without --same_speaker.",
            }
        fold_uars = [f["uar"] for f in per_fold if f["uar"] is not None]
        fold_was = [f["wa"] for f in per_fold if f["wa"] is not None]
        metrics.update(
            uar=pooled["uar"],
            wa=pooled["wa"],
            per_class_recall=pooled["per_class_recall"],
            confusion=pooled["confusion"],
            support=pooled["support"],
            n=pooled["n"],
            fold_uar_mean=float(np.mean(fold_uars)),
            fold_uar_std=float(np.std(fold_uars)),
            fold_wa_mean=float(np.mean(fold_was)),
            fold_wa_std=float(np.std(fold_was)),
        )
        artifacts.write_predictions(artifacts.staged(run_dir, "predictions.csv"), rows, class_names)
        artifacts.plot_confusion(
            artifacts.staged(run_dir, "confusion.png"), pooled["confusion"], class_names,
            title=f"{config['dataset']['name']} {config['model']['name']}: "
            f"UAR {100 * pooled['uar']:.1f} %, WA {100 * pooled['wa']:.1f} %",
        )
    # The deployable model: the fold's of a one-fold protocol ("all",
    # "holdout"), else the final model (trained on every speaker).
    source_dir = None
    if len(folds) == 1:
        source_dir = os.path.join(run_dir, "folds", folds[0].name)
    elif final is not None:
        source_dir = os.path.join(run_dir, "final")
        metrics["final_model"] = {
            "path": None,
            "train_speakers": final["train_speakers"],
            "val_speakers": final["val_speakers"],
            "counts": final["counts"],
            "val_uar": final.get("val", {}).get("uar"),
            "best_epoch": final.get("best_epoch"),
            "seconds": final["seconds"],
        }
    if source_dir is not None:
        for name in ("model.keras", "model.skz"):
            source = os.path.join(source_dir, name)
            if os.path.exists(source):
                if final is not None:
                    metrics["final_model"]["path"] = name
                with open(source, "rb") as f:
                    artifacts.atomic_write_bytes(artifacts.staged(run_dir, name), f.read())
    artifacts.write_json(artifacts.staged(run_dir, "metrics.json"), metrics)
    # metrics.json, predictions.csv, confusion.png (and the model) together.
    artifacts.commit_results(run_dir)
    return metrics


# ------------------------------------------------------- one deep fold


def _is_classical(name):
    try:
        from speechmodel.classical.classifiers import available_classifiers
    except ImportError:
        return False
    return name in available_classifiers()


def _fold_data(manifest, test_manifest, fold, class_names, config):
    from speechmodel import datasets_module

    balance = datasets_module("balance")
    labels = manifest.label_indices(class_names)
    train = np.asarray(fold.train, dtype=np.int64)
    if config["training"]["balance"] == "oversample":
        train = np.asarray(
            balance.oversample(train, labels[train], seed=config["training"]["seed"]), dtype=np.int64
        )
    paths = [u.path for u in manifest]
    test_labels = test_manifest.label_indices(class_names) if len(fold.test) else np.zeros(0, np.int64)
    return {
        "train": ([paths[i] for i in train], labels[train]),
        "val": ([paths[i] for i in fold.val], labels[list(fold.val)]),
        "test": ([test_manifest[i].path for i in fold.test], test_labels[list(fold.test)]),
        "test_utterances": [test_manifest[i] for i in fold.test],
        "speakers": {
            "train": [manifest[int(i)].speaker for i in train],
            "val": [manifest[int(i)].speaker for i in fold.val],
            "test": [test_manifest[i].speaker for i in fold.test],
        },
        "class_weight": (
            balance.class_weights(labels[list(fold.train)], len(class_names))
            if config["training"]["balance"] == "class_weights"
            else None
        ),
    }


def _fold_result(fold, data, class_names, test_probabilities, test_rows_index, extra):
    result = {
        "fold": fold.name,
        "train_speakers": list(fold.train_speakers),
        "val_speakers": list(fold.val_speakers),
        "test_speakers": list(fold.test_speakers),
        "counts": {
            "train": len(fold.train),
            "train_after_balance": len(data["train"][0]),
            "val": len(fold.val),
            "test": len(fold.test),
        },
        "test": None,
        "predictions": [],
    }
    extra = dict(extra)
    per_clip = extra.pop("per_clip_predicted", None)
    result.update(extra)
    if len(fold.test):
        utterances = data["test_utterances"]
        truth = data["test"][1]
        kept = np.asarray(test_rows_index, dtype=np.int64)
        predicted = test_probabilities.argmax(-1)
        result["test"] = compute_metrics(truth[kept], predicted, class_names=class_names)
        result["test"]["failed_files"] = int(len(truth) - len(kept))
        if per_clip is not None:
            result["test_per_clip"] = compute_metrics(truth[kept], per_clip, class_names=class_names)
        for row, k in enumerate(kept):
            u = utterances[k]
            result["predictions"].append(
                {
                    "file": u.path,
                    "speaker": u.speaker,
                    "fold": fold.name,
                    "true": class_names[truth[k]],
                    "predicted": class_names[predicted[row]],
                    **({} if per_clip is None else {"predicted_per_clip": class_names[per_clip[row]]}),
                    "probabilities": [float(p) for p in test_probabilities[row]],
                }
            )
    return result


def _run_deep_fold(config, manifest, test_manifest, fold, number, class_names, fold_dir, *,
                   reporter=None, label=None):
    import keras

    from speechmodel import distribute, precision
    from speechmodel.config import FeatureConfig
    from speechmodel.models.recognizer import EmotionRecognizer
    from speechmodel.models.registry import build_model
    from speechmodel.pipeline import EpochCounter, FailureLog, make_dataset
    from speechmodel.training.callbacks import EpochTimer, best_epoch_figures, fit_callbacks, quiet_fit
    from speechmodel.training.optimizers import make_loss, make_optimizer
    from speechmodel.training.uar_metric import UnweightedAverageRecall

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
    data = _fold_data(manifest, test_manifest, fold, class_names, config)
    # Kept with the backup: a resumed fold reports the files an earlier
    # attempt could not read, though it need not read them again.
    failures = FailureLog(os.path.join(fold_dir, "backup", "failures.json"))
    waveform_augment = features_augment = mixup = None
    if training.get("augment"):
        from speechmodel import augment as aug

        settings = aug.Augmentation.from_dict(training["augment"])
        waveform_augment = aug.build_waveform_augment(
            training["augment"], sample_rate=features.sample_rate
        )
        features_augment = aug.build_features_augment(training["augment"], feature_config=features)
        mixup = settings.mixup
    reporter = reporter or _quiet_reporter()
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
            optimizer=make_optimizer(training, learning_rate),
            loss=make_loss(training, one_hot=mixup is not None),
            metrics=[
                "accuracy" if mixup is None else "categorical_accuracy",
                UnweightedAverageRecall(len(class_names)),
            ],
        )
    common = {"config": features, "batch_size": batch_size, "failures": failures}
    if _takes_waveforms(config, model):
        common["outputs"] = "waveforms"
    extra = {"epochs": training["epochs"], "mode": training["mode"]}
    if training["mode"] in ("two_stage", "frozen"):
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
            train_ds = aug.apply_mixup(
                train_ds, alpha=mixup.alpha, num_classes=len(class_names), seed=seed, p=mixup.p,
                epoch=epoch,
            )
        val_ds = make_dataset(*data["val"], cache=cache, **common) if len(fold.val) else None
        callbacks, monitor = fit_callbacks(
            fold_dir, val_ds, class_names=class_names, training=training, epoch=epoch
        )
        timer = EpochTimer()
        fit_start = time.time()
        reporter.say(f"{label}: end to end, {_count(training['epochs'], 'epoch')}")
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
            title=label if fold.name == "final" else f"fold {fold.name}",
            monitor=training["monitor"], best_epoch=extra.get("best_epoch"),
        )
    probabilities, kept = np.zeros((0, len(class_names))), []
    if "test_predictions" in extra:  # classified from the cached embeddings
        probabilities, kept = extra.pop("test_predictions")
    elif len(fold.test):
        test_ds = make_dataset(*data["test"], with_index=True, **common)
        chunks = []
        count = reporter.count(f"{label}: predicting the test speakers", len(data["test"][0]))
        for x, _, index in test_ds:
            out = model(x, training=False)
            out = out["probabilities"] if isinstance(out, dict) else out
            chunks.append(np.asarray(out, dtype=np.float64))
            kept.extend(np.asarray(index).tolist())
            count.update(len(kept))
        count.close()
        probabilities = np.concatenate(chunks) if chunks else probabilities
    recognizer = EmotionRecognizer(model, feature_config=features.to_dict(), class_names=class_names)
    _save_keras(recognizer, artifacts.staged(fold_dir, "model.keras"))
    extra["failed_files"] = [list(f) for f in failures.failures]
    extra["seconds"] = time.time() - start
    precision.set_precision("float32")
    return _fold_result(fold, data, class_names, probabilities, kept, extra)


def _takes_waveforms(config, model=None):
    from speechmodel.models.frontends import is_front_end

    if model is not None and config["training"].get("init_from"):
        from speechmodel.models.recognizer import takes_waveforms

        return takes_waveforms(model)
    return config["model"]["name"] == "speechmodel" and is_front_end(config["model"].get("backbone"))


def _quiet_reporter():
    from speechmodel.progress import Reporter

    return Reporter(lambda message: _LOG.info(message))


# ------------------------------------------------------------ init_from


def init_from_path(spec):
    """The ``.keras`` file ``training.init_from`` names: a path, a shipped
    model's name (``default``, ``fast``) or a run directory."""
    from speechmodel import presets

    try:
        path = presets.resolve_model(spec)
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
    a saved ``EmotionRecognizer``, read from the file without building it."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))["config"]
        classifier = config["classifier"]
        if not isinstance(classifier, dict) or "config" not in classifier:
            raise KeyError("classifier")
        return classifier, dict(config.get("feature_config") or {}), list(config.get("class_names") or [])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise RunError(
            f"training.init_from: {path} is not a model saved by this toolkit "
            f"(a .keras EmotionRecognizer): {exc}. Received: init_from={path!r}"
        ) from None


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
    name = "speechmodel" if kind in ("SpeechModel", "AudioSpeechModel") else config["model"]["name"]
    config["model"] = {"name": name, "backbone": backbone} if backbone else {"name": name}
    return config


def _initial_model(spec, class_names, say):
    """The classifier of a saved model, to fine-tune: as saved when its
    classes are ``class_names`` (same order), else rebuilt for
    ``class_names`` with every weight copied; in the output layer, a class
    the saved model knows keeps its weights, a new class starts afresh."""
    from speechmodel import load_keras_model

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


# --------------------------------------------------- one classical fold


def _run_classical_fold(config, manifest, test_manifest, fold, number, class_names, fold_dir, *,
                        reporter=None, label=None):
    from speechmodel.classical import persistence
    from speechmodel.classical.experiment import run_classical_fold
    from speechmodel.classical.features import ClassicalFeatureConfig
    from speechmodel.classical.grid_search import default_grid_path

    start = time.time()
    reporter = reporter or _quiet_reporter()
    label = label or f"fold {fold.name}"
    settings = dict(config["training"].get("classical") or {})
    feature_config = ClassicalFeatureConfig.from_dict(settings.get("features") or {})
    # The run directory's parent (folds/<fold>/ and final/ alike).
    run_dir = os.path.dirname(fold_dir) if fold.name == "final" else os.path.dirname(os.path.dirname(fold_dir))
    cache_dir = settings.get("cache_dir") or os.path.join(run_dir, "..", ".feature-cache")
    same = test_manifest is manifest
    rows = list(manifest) if same else list(manifest) + list(test_manifest)
    n_jobs = int(settings.get("n_jobs", 2))
    matrix = _classical_features(
        [u.path for u in rows], feature_config, n_jobs=n_jobs, cache_dir=cache_dir,
        reporter=reporter, label=f"{label}: features",
    )
    kept = np.asarray(matrix.kept, dtype=np.int64)
    position = {int(k): i for i, k in enumerate(kept)}
    labels = np.concatenate(
        [manifest.label_indices(class_names)] + ([] if same else [test_manifest.label_indices(class_names)])
    )
    groups = np.array([f"{u.corpus}:{u.speaker}" for u in rows])
    offset = 0 if same else len(manifest)

    def rows_of(indices, shift=0):
        return np.array([position[i + shift] for i in indices if i + shift in position], dtype=np.int64)

    data = _fold_data(manifest, test_manifest, fold, class_names, config)
    name = config["model"]["name"]
    grid = settings.get("grid", default_grid_path(name))
    search_start = time.monotonic()

    def candidate_done(done, total, params, mean_uar):
        elapsed = time.monotonic() - search_start
        left = elapsed * (total - done) / done
        from speechmodel.progress import format_seconds

        reporter.say(
            f"{label}: grid search {done}/{total} candidates: {_params_text(params)} -> inner UAR "
            f"{100 * mean_uar:.2f} % ({format_seconds(elapsed)}"
            + (f", about {format_seconds(left)} left in this search)" if done < total else ")")
        )

    reporter.say(f"{label}: {name}, grid search over the training speakers, then the refit")
    common = {
        "grid": grid, "seed": int(config["training"]["seed"]), "class_names": class_names,
        "params": settings.get("params"), "feature_config": feature_config, "n_jobs": n_jobs,
    }
    fit_rows = np.concatenate([rows_of(fold.train), rows_of(fold.val)])
    if len(fold.test):
        outcome = run_classical_fold(
            name, matrix.X, labels[kept], groups[kept],
            rows_of(fold.train), rows_of(fold.val), rows_of(fold.test, offset),
            progress=candidate_done, **common,
        )
    else:  # The final model: every speaker, nothing to test.
        outcome = _fit_classical(
            name, matrix.X[fit_rows], labels[kept][fit_rows], groups[kept][fit_rows],
            progress=candidate_done, **common,
        )
    persistence.save_model(outcome["model"], artifacts.staged(fold_dir, "model.skz"))
    test_positions = [i for i in fold.test if i + offset in position]
    extra = {
        "chosen_params": outcome["chosen_params"],
        "inner_uar": outcome["inner_uar"],
        "fit_seconds": outcome["fit_seconds"],
        "failed_files": [[f.path, f.reason] for f in matrix.failures],
        "seconds": time.time() - start,
    }
    reporter.run.epoch_done((fold.name, "classical"), extra["seconds"])
    reporter.say(
        f"{label}: chose {_params_text(outcome['chosen_params'])} ({extra['fit_seconds']:.0f} s) "
        f"| {reporter.run.summary()}"
    )
    kept_test = [list(fold.test).index(i) for i in test_positions]
    probabilities = np.asarray(outcome.get("probabilities", np.zeros((0, len(class_names)))))
    return _fold_result(fold, data, class_names, probabilities, kept_test, extra)


def _params_text(params):
    return ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items())) or "the defaults"


def _classical_features(paths, feature_config, *, n_jobs, cache_dir, reporter, label, chunk=128):
    """``extract_features`` of ``paths``, a chunk of files at a time so that
    a long extraction reports its progress; the same ``FeatureMatrix``."""
    from speechmodel.classical.features import FeatureFailure, FeatureMatrix, extract_features

    count = reporter.count(label, len(paths))
    blocks, failures, names = [], [], None
    for begin in range(0, len(paths), chunk):
        part = extract_features(paths[begin:begin + chunk], feature_config, n_jobs=n_jobs, cache_dir=cache_dir)
        names = part.feature_names
        blocks.append(part.X)
        failures += [FeatureFailure(f.index + begin, f.path, f.reason) for f in part.failures]
        count.update(min(begin + chunk, len(paths)))
    count.close()
    if names is None:
        return extract_features([], feature_config, n_jobs=1, cache_dir=cache_dir)
    return FeatureMatrix(np.concatenate(blocks), names, failures)


def _fit_classical(name, X, y, groups, *, grid, seed, class_names, params, feature_config, n_jobs,
                   progress=None):
    """The final classical model: the grid search and the refit of
    ``run_classical_fold`` on every (non-test) row, nothing to predict."""
    from speechmodel.classical.classifiers import ClassicalModel
    from speechmodel.classical.grid_search import GridSpec, grid_search, load_grid

    start = time.perf_counter()
    if isinstance(grid, (str, bytes)) or hasattr(grid, "__fspath__"):
        grid = load_grid(grid)
    if isinstance(grid, GridSpec):
        grid = grid.param_grid
    chosen, search = dict(params or {}), None
    if grid is not None:
        search = grid_search(
            name, X, y, groups, param_grid=grid, base_params=params, seed=seed, n_jobs=n_jobs,
            progress=progress,
        )
        chosen.update(search.best_params)
    model = ClassicalModel(name, params=chosen, feature_config=feature_config, class_names=class_names, seed=seed)
    model.fit(X, y)
    return {
        "model": model,
        "chosen_params": chosen,
        "inner_uar": None if search is None else search.best_score,
        "fit_seconds": time.perf_counter() - start,
    }

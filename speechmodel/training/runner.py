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
(``backup.AtomicBackupAndRestore``) restores the weights, the optimizer,
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

The parts of a run: ``speechmodel.training.folds`` (the corpora, the folds,
each fold's data and result), ``deep_fold`` and ``classical_fold`` (one
fold of each kind of model), ``summary`` (``metrics.json`` and the lines of
the folds) and ``run_log`` (the run's log); this module runs them in order.
"""

import errno
import os
import shutil
import sys
import time

from absl import logging

from speechmodel.training import artifacts
from speechmodel.training.classical_fold import run_classical_fold
from speechmodel.training.config import default_output_dir, digest, resolve
from speechmodel.training.deep_fold import adopt_init_from, run_deep_fold
from speechmodel.training.folds import RunError, final_fold, load_manifests, make_protocol_folds, small_validation
from speechmodel.training.run_log import count, log_file, quiet_tensorflow, say
from speechmodel.training.summary import fold_line, headline, summarise


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
            with log_file(os.path.join(run_dir, "train.log")), quiet_tensorflow():
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
        from speechmodel.training.config import merge
        from speechmodel.training.defaults import DEFAULTS

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


def _run(config, run_dir, to_stdout):
    from speechmodel import progress

    start = time.time()
    reporter = progress.Reporter(
        lambda message: say(message, to_stdout), bar=to_stdout and _is_terminal(sys.stdout)
    )
    manifest, test_manifest, class_names = load_manifests(config)
    say(manifest.summary(), to_stdout)
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
    final = final_fold(config, manifest, folds)
    for fold in folds + ([final] if final else []):
        warning = small_validation(fold, len(class_names))
        if warning:
            logging.warning("%s", warning)
    final_dir = os.path.join(run_dir, "final")
    done = [f.name for f in folds if os.path.exists(os.path.join(run_dir, "folds", f.name, "result.json"))]
    if done:
        say(f"Resuming {run_dir}: {len(done)} of {len(folds)} folds already finished "
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
        say(fold_line(number, len(folds), fold, result, results, state), to_stdout)
    final_result = None
    if final is not None:
        final_result = _finished(final_dir, "final model", reporter)
    metrics = summarise(config, folds, results, class_names, run_dir, time.time() - start, final=final_result)
    if metrics.get("uar") is not None:
        say(headline(config, metrics, run_dir), to_stdout)
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
                    f"({count(len(final.train_speakers) + len(final.val_speakers), 'speaker')})"
                    if is_classical else
                    f"{len(final.train)} training utterances "
                    f"({count(len(final.train_speakers), 'speaker')}), validation speakers "
                    f"{_speakers(final.val_speakers)}"
                )
            ),
        )
        metrics = summarise(
            config, folds, results, class_names, run_dir, time.time() - start, final=final_result
        )
    deployable = _deployable_model(run_dir)
    if deployable:
        what = "the final model, trained on every speaker" if final is not None else "the fold's model"
        say(f"Deployable model ({what}): {deployable}  (infer.py --model {deployable})", to_stdout)
    elif len(folds) > 1 and not config["training"].get("final_model", True):
        say("No deployable model: the final model was skipped (--nofinal_model); each fold's "
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
        f"({count(len(fold.train_speakers), 'speaker')}), validation speakers "
        f"{_speakers(fold.val_speakers)}"
    )


def _plan(reporter, config, name, is_classical=False):
    """The epochs fold ``name`` will train, by kind (for the time left); a
    classical model's fold counts as one epoch."""
    if is_classical:
        reporter.plan((name, "classical"), 1, "classical")
        return
    training = config["training"]
    if training["mode"] == "two_stage" and training["segment_epochs"] > 0:
        reporter.plan((name, "stage1"), training["segment_epochs"], "stage1")
    kind = {"two_stage": "head", "frozen": "head", "finetune": "finetune"}.get(
        training["mode"], "end_to_end")
    reporter.plan((name, kind), training["epochs"], kind)


def _train_fold(config, manifest, test_manifest, fold, number, class_names, fold_dir, *,
                is_classical, reporter, label, header):
    """Runs (or finds done) one fold, or the final model: ``(result, state)``."""
    result = _finished(fold_dir, label, reporter)
    if result is not None:
        return result, "done earlier"
    reporter.say(header)
    os.makedirs(fold_dir, exist_ok=True)
    artifacts.discard_staged(fold_dir)  # Of an interrupted attempt.
    test_source = test_manifest if test_manifest is not None else manifest
    runner = run_classical_fold if is_classical else run_deep_fold
    result = runner(
        config, manifest, test_source, fold, number, class_names, fold_dir,
        reporter=reporter, label=label,
    )
    # The fold's files (result.json, model, curves) appear together.
    artifacts.write_json(artifacts.staged(fold_dir, "result.json"), result)
    artifacts.commit_results(fold_dir)
    shutil.rmtree(os.path.join(fold_dir, "backup"), ignore_errors=True)
    return result, f"{result['seconds']:.0f} s"


def _finished(fold_dir, label, reporter):
    """The result of a fold (or the final model) finished earlier, or None
    (not finished, or damaged: then its folder is set aside, said in one
    line, and it is trained again, every file of it rebuilt)."""
    if not os.path.exists(os.path.join(fold_dir, "result.json")):
        return None
    damaged = artifacts.damaged_results(fold_dir)
    if not damaged:
        return artifacts.read_json(os.path.join(fold_dir, "result.json"))
    kept = artifacts.set_aside(fold_dir)
    logging.warning(
        "%s: %s; its folder is set aside as %s and the %s is trained again (every file rebuilt).",
        label, "; ".join(f"{name} is damaged ({why})" for name, why in damaged), kept,
        "final model" if label == "final model" else "fold",
    )
    return None


def _deployable_model(run_dir):
    for name in ("model.keras", "model.skz"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            return path
    return None


def _is_classical(name):
    try:
        from speechmodel.classical.registry import available_classifiers
    except ImportError:
        return False
    return name in available_classifiers()

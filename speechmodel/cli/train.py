"""Speaker-independent speech emotion recognition experiments.

    python train.py --dataset ravdess --data-dir DIR --epochs 30
    python train.py --dataset ravdess,nemo --data_dir DIR1,DIR2 --protocol loco
    python train.py --dataset folder --data_dir my_recordings/     # the recommended recipe
    python train.py --dataset csv --data_dir my_corpus.csv
    python train.py --config configs/ravdess_cnn4.json --segment_epochs 4 --set training.segment_dropout=0.2

Reads configs/<dataset>.json (or --config; a corpus without a config of its
own, such as your folder or CSV file, gets the toolkit's recommended recipe:
the model and training of configs/ravdess.json, a head on frozen Whisper-base
embeddings), applies the flags given on the command line over it, then any
--set KEY=VALUE (any key of the config, dotted: --set training.patience=5;
the value is JSON, or else a plain string), runs the protocol's folds and
writes a run directory (config.json, metrics.json, predictions.csv,
confusion.png, per-fold curves, TensorBoard logs and models, train.log).
Running the same command again continues an interrupted run.

Every value is checked before TensorFlow is loaded and before anything is
written (names, emotions, files, folders, that the run directory can be
written, the corpus and its folds): a mistake is one line on stderr and exit
status 2. A key the run would not use (e.g. --segment_epochs outside
--mode two_stage) is refused. --print_config prints the resolved config;
--dry_run checks everything and exits without training. Flags may be written
with underscores or dashes (--data_dir or --data-dir). All logic lives in
speechmodel.training.
"""

import copy
import json
import os
import shutil
import sys

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command's flags (once; importing this module defines
    none, so that the library can use its functions)."""
    if "dry_run" in FLAGS:
        return
    flags.DEFINE_string("config", None, "JSON config file (data, never code). Default: configs/<dataset>.json, or the recommended recipe (configs/ravdess.json's features, model and training) for a corpus without one, e.g. folder or csv.")
    flags.DEFINE_string("dataset", "ravdess", "Corpus: ravdess, emodb, tess, savee, cremad, iemocap, thaiser, nemo, folder (your folder, as --data_dir) or csv (your CSV file itself as --data_dir: columns path, emotion, speaker); or a comma list of corpora trained on together, e.g. ravdess,nemo (with --data_dir DIR1,DIR2).")
    flags.DEFINE_string("data_dir", os.environ.get("SER_DATA_DIR"), "The corpus directory (the CSV file for --dataset csv); with several corpora, one directory per corpus, comma-separated, in the order of --dataset. Default: $SER_DATA_DIR.")
    flags.DEFINE_string("test_dataset", None, "Cross-corpus: the corpus to test on (with --protocol cross).")
    flags.DEFINE_string("test_data_dir", None, "Cross-corpus: the test corpus directory.")
    flags.DEFINE_string("model", None, "speechmodel (DCNN-BLSTMwA), a baseline (alexnet, alexnet_gap, cnn4, resnet18, resnet34, resnet50, vgg11, vgg16, ...) or a classical one (svm, rf, hgb, knn, mlp, bagging).")
    flags.DEFINE_string("features", None, "A classical model's feature set: statistics (librosa statistics, the default), egemaps (openSMILE's eGeMAPSv02 functionals, 88 values) or compare (ComParE 2016 functionals, 6373). Sets training.classical.features; the deep models' features are the config's features section.")
    flags.DEFINE_string("backbone", None, "SpeechModel's segment embedder: a pretrained speech front end (whisper_base: Whisper's encoder, the default recipe) or a CNN: alexnet, alexnet_gap, cnn4, resnet18, resnet34, resnet50, resnet50v2, vgg11, vgg16, mobilenetv2, efficientnetb0.")
    flags.DEFINE_integer("fine_tune_blocks", None, "With a pretrained front end and --mode finetune (or end_to_end): train its top N blocks (0: frozen). Sets model.fine_tune_blocks.", lower_bound=0)
    flags.DEFINE_string("weights", None, "Initial CNN weights: imagenet, none, or a local weights file (front ends: their pretrained weights unless a file is given).")
    flags.DEFINE_string("init_from", None, "Start from a saved model and fine-tune it: a model.keras written by train.py, its run directory, or a shipped model (default, fast). Sets training.init_from.")
    flags.DEFINE_bool("final_model", True, "After a cross-validated protocol, also train the deployable model on every speaker (run directory's model.keras); --nofinal_model skips it. Sets training.final_model.")
    flags.DEFINE_enum("mode", None, ["end_to_end", "two_stage", "frozen", "finetune"], "end_to_end, two_stage (the paper: fine-tune the CNN on segments, cache embeddings, train the BLSTM head), frozen (cached embeddings of a fixed encoder; the recipe's) or finetune (a pretrained front end's top --fine_tune_blocks blocks and the head, from the cached states of its lower blocks; model.lora_rank for adapters). Default: the config's.")
    flags.DEFINE_enum("protocol", None, ["loso", "kfold", "session", "holdout", "cross", "all", "loco", "multi"], "loso, kfold (speaker k-fold; RAVDESS: 6 folds of 4 actors), session (IEMOCAP), holdout, cross, all (one deployable model on every speaker); with several corpora also loco (leave one corpus out, on the emotions all corpora share) or multi (speaker k-fold inside each corpus: fold i tests group i of every corpus; RAVDESS keeps its 6 actor folds). Default: the config's.")
    flags.DEFINE_integer("folds", None, "k of the kfold and multi protocols.", lower_bound=2)
    flags.DEFINE_list("holdout_speakers", None, "Test speakers of the holdout protocol.")
    flags.DEFINE_string("val_speakers", None, "Validation speakers taken from the training speakers: a count (2) or a comma list of speakers (09 or 03,08).")
    flags.DEFINE_bool("random_split", False, "Split utterances at random, mixing speakers between train and test (NOT speaker independent; warns).")
    flags.DEFINE_string("emotions", None, "Comma list of emotions to keep, e.g. angry,happy,neutral,sad. Several corpora keep the union of their emotions (loco: those all share) unless this restricts them.")
    flags.DEFINE_integer("epochs", None, "Epochs of the head (SpeechModel's BLSTM + attention + DNN on the cached embeddings in the frozen and two_stage modes; the whole model in end_to_end). Early stopping on the validation speakers may stop sooner. Stage 1 of two_stage: --segment_epochs.", lower_bound=1)
    flags.DEFINE_integer("batch_size", None, "Utterances per batch of the head (per replica: the global batch is this times the replicas). Stage 1 of two_stage: --segment_batch_size.", lower_bound=1)
    flags.DEFINE_integer("segment_epochs", None, "Stage 1 of --mode two_stage: epochs of fine-tuning the CNN on segment labels (0 skips stage 1).", lower_bound=0)
    flags.DEFINE_integer("segment_batch_size", None, "Stage 1 of --mode two_stage: segments per batch.", lower_bound=1)
    flags.DEFINE_float("learning_rate", None, "Learning rate for one replica (scaled linearly with the replicas).")
    flags.DEFINE_string("augment", None, "none, or a comma list of: noise, speed, pitch, specaugment, mixup (settings from the config's training.augment, else defaults).")
    flags.DEFINE_enum("balance", None, ["none", "oversample", "class_weights"], "Class balance on the training folds: none, oversample or class_weights.")
    flags.DEFINE_enum("strategy", None, ["default", "mirrored", "multiworker"], "default (one device), mirrored (all local GPUs) or multiworker (TF_CONFIG).")
    flags.DEFINE_enum("mixed_precision", None, ["float32", "mixed_float16", "mixed_bfloat16", "auto"], "float32, mixed_float16, mixed_bfloat16 or auto.")
    flags.DEFINE_integer("seed", None, "Seed of folds, shuffling, initialisation and augmentation.", lower_bound=0)
    flags.DEFINE_multi_string("set", [], "KEY=VALUE: set any key of the config, dotted (repeatable), after the other flags, e.g. --set training.segment_epochs=4 --set model.dense_units=[256,128]. VALUE is JSON, else a plain string. --print_config shows the keys.")
    flags.DEFINE_string("output_dir", None, "Run directory. Default: runs/<dataset>-<model>-<protocol>-<config hash>.")
    flags.DEFINE_bool("resume", True, "Continue the run in --output_dir if it holds the same experiment (finished folds are kept).")
    flags.DEFINE_bool("print_config", False, "Print the resolved config and exit.")
    flags.DEFINE_bool("dry_run", False, "Check everything (flags, files, the corpus and its folds) and exit without writing anything.")


# The flags that set one config key each, and the key.
FLAG_KEYS = {
    "data_dir": "dataset.data_dir",
    "test_dataset": "dataset.test_name",
    "test_data_dir": "dataset.test_data_dir",
    "model": "model.name",
    "backbone": "model.backbone",
    "fine_tune_blocks": "model.fine_tune_blocks",
    "weights": "model.weights",
    "init_from": "training.init_from",
    "final_model": "training.final_model",
    "protocol": "protocol.name",
    "folds": "protocol.k",
    "holdout_speakers": "protocol.holdout_speakers",
    "val_speakers": "protocol.val_speakers",
    "random_split": "protocol.random_split",
    "emotions": "dataset.emotions",
    "mode": "training.mode",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "segment_epochs": "training.segment_epochs",
    "segment_batch_size": "training.segment_batch_size",
    "learning_rate": "training.learning_rate",
    "augment": "training.augment",
    "balance": "training.balance",
    "strategy": "training.strategy",
    "mixed_precision": "training.mixed_precision",
    "seed": "training.seed",
    "output_dir": "output_dir",
}


class _Setup:
    """A config built from the flags: the config, where it came from, and
    the keys the command line set (key -> how: ``--epochs`` or ``--set
    training.epochs``)."""

    def __init__(self, config, source, cli_keys):
        self.config, self.source, self.cli_keys = config, source, cli_keys


def _given(flags, name):
    return flags[name].present or (name == "data_dir" and bool(flags.data_dir))


def config_from_flags(flags, *, say=None):
    """The config file (``--config``, ``configs/<dataset>.json`` or the
    recommended recipe) with every flag given on the command line applied
    over it, then the ``--set`` overrides; validated without TensorFlow
    (``resolve(deep=False, strict=True)``).

    Raises:
        ConfigError: the first problem, naming the flag or key.
    """
    return _setup_from_flags(flags, say=say).config


def _setup_from_flags(flags, *, say=None):
    from speechmodel import datasets
    from speechmodel.training.config import (
        RECIPE,
        default_config_path,
        read_config_file,
        recipe_sections,
        resolve,
    )
    from speechmodel.training.defaults import ConfigError, closest
    from speechmodel.training.overrides import parse_augment, parse_override, set_key
    from speechmodel.training.schema import CLASSICAL_MODELS

    say = say or _info
    dataset = flags.dataset
    names = [n.strip() for n in str(dataset).replace("+", ",").split(",")]
    for name in names:
        try:
            datasets.corpus_name(name)
        except ValueError:
            raise ConfigError(
                f"--dataset: unknown corpus{closest(name, datasets.corpus_names())}. Known: "
                f"{', '.join(datasets.corpus_names())}, or a comma list of them. Received: dataset={dataset!r}"
            ) from None
    canonical = ",".join(datasets.corpus_name(n) for n in names)
    if flags.config:
        raw, source = read_config_file(flags.config), flags.config
    else:
        path = default_config_path(canonical)
        if path:
            raw, source = read_config_file(path), path
        else:
            raw = recipe_sections()
            source = f"the recommended recipe (configs/{RECIPE}.json)"
            say(
                f"No configs/{canonical}.json: using the toolkit's recommended recipe (the features, "
                f"model and training of configs/{RECIPE}.json: SpeechModel's head on frozen "
                "Whisper-base embeddings); --config FILE, flags or --set change it."
            )
    try:
        config = resolve(raw, deep=False)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    cli = {}

    def put(key, value, how):
        set_key(config, key, value)
        cli[key] = how

    if flags.config is None or _given(flags, "dataset"):
        if flags.config is None:
            config["dataset"]["name"] = dataset
        else:
            put("dataset.name", dataset, "--dataset")
            config["dataset"]["corpora"] = None
    for flag, key in FLAG_KEYS.items():
        if not _given(flags, flag) or flag in ("emotions", "augment", "weights", "val_speakers",
                                                "holdout_speakers", "model", "backbone"):
            continue
        put(key, getattr(flags, flag), f"--{flag}")
    if _given(flags, "seed"):
        put("protocol.seed", flags.seed, "--seed")
    if _given(flags, "emotions"):
        put("dataset.emotions", [e.strip() for e in flags.emotions.split(",") if e.strip()], "--emotions")
    if _given(flags, "holdout_speakers"):
        put("protocol.holdout_speakers", list(flags.holdout_speakers), "--holdout_speakers")
    if _given(flags, "val_speakers"):
        value = flags.val_speakers.strip()
        # A count ("2") or speakers ("09", "03,08"): a leading zero is an ID.
        count = value.isdigit() and not (len(value) > 1 and value.startswith("0"))
        put("protocol.val_speakers", int(value) if count else
            [v.strip() for v in value.split(",") if v.strip()], "--val_speakers")
    if _given(flags, "model"):
        cli["model.name"] = "--model"
        if flags.model != config["model"].get("name") or flags.model in CLASSICAL_MODELS:
            # Another model: the file's model arguments were for that one.
            model = {"name": flags.model}
            if flags.model not in CLASSICAL_MODELS:
                model["weights"] = config["model"].get("weights")
            config["model"] = model
    if _given(flags, "backbone"):
        put("model.backbone", flags.backbone, "--backbone")
        _front_end_recipe(config, cli, mode_given=_given(flags, "mode"), say=say)
    if _given(flags, "weights"):
        put("model.weights", None if flags.weights.lower() == "none" else flags.weights, "--weights")
    if "model.name" in cli or "model.backbone" in cli:
        _drop_other_model_keys(config, cli, source, say)
    if _given(flags, "features"):
        if config["model"].get("name") not in CLASSICAL_MODELS:
            raise ConfigError(
                f"--features chooses the feature set of a classical model (--model "
                f"{', '.join(CLASSICAL_MODELS)}); model {config['model'].get('name')!r} takes the "
                f"config's features section. Received: features={flags.features!r}"
            )
        put("training.classical.features", flags.features, "--features")
    if _given(flags, "augment"):
        put("training.augment", parse_augment(flags.augment, config["training"]["augment"]), "--augment")
    for text in flags.set:
        key, value = parse_override(text)
        put(key, value, f"--set {key}")
    if cli.get("dataset.name") and "dataset.corpora" not in cli and config["dataset"].get("corpora"):
        config["dataset"]["corpora"] = None
    try:
        config = resolve(config, deep=False)
    except ConfigError as exc:
        raise ConfigError(_name_flag(str(exc), cli)) from None
    setup = _Setup(config, source, cli)
    _drop_unused(setup, say)
    return setup


def _name_flag(message, cli):
    """``training.epochs must be ...`` -> ``training.epochs (--epochs) must
    be ...``, for a key the command line set."""
    for key, how in sorted(cli.items(), key=lambda kv: -len(kv[0])):
        if message.startswith(key + " ") or message.startswith(key + ":"):
            if not how.startswith("--set"):
                return f"{key} ({how}){message[len(key):]}"
    return message


def _drop_unused(setup, say):
    """Keys the run would not use: refused when the command line set them
    (or the file contradicts itself), left at their defaults when they come
    from the file and a flag made them unused (``--model svm`` over a
    config written for SpeechModel)."""
    from speechmodel.training.config import resolve
    from speechmodel.training.defaults import DEFAULTS, ConfigError, get_key
    from speechmodel.training.overrides import set_key
    from speechmodel.training.schema import inapplicable, unused_message

    config, reset = setup.config, []
    for _ in range(5):
        unused = inapplicable(config)
        if not unused:
            break
        for key, why, deciders in unused:
            if key in setup.cli_keys:
                how = setup.cli_keys[key]
                shown = f"{key} ({how})" if not how.startswith("--set") else key
                raise ConfigError(unused_message(config, key, why).replace(key, shown, 1))
            changed = [setup.cli_keys[d] for d in deciders if d in setup.cli_keys]
            if not changed:
                raise ConfigError(f"{_shown(setup.source)}: {unused_message(config, key, why)}")
            reset.append(f"{key}={get_key(config, key)!r}")
            if key.startswith("model.") and key[len("model."):] not in DEFAULTS["model"]:
                config["model"].pop(key[len("model."):])
            else:
                set_key(config, key, get_key(DEFAULTS, key))
    else:  # pragma: no cover - the rules settle in a step or two
        raise ConfigError("The config's settings contradict each other: " + "; ".join(reset))
    if reset:
        say(f"Left at their defaults (or out), as the flags given make them unused: {', '.join(reset)} "
            f"(from {_shown(setup.source)}).")
    setup.config = resolve(config, deep=False, strict=True)


def _drop_other_model_keys(config, cli, source, say):
    """``--model``/``--backbone`` chose another kind of model: the file's
    model keys that this one does not take are left out (said once)."""
    from speechmodel.training.schema import model_keys

    accepted = model_keys(config["model"])
    dropped = [k for k in config["model"] if k not in accepted and f"model.{k}" not in cli]
    for key in dropped:
        config["model"].pop(key)
    if dropped:
        chosen = (f"--backbone {config['model'].get('backbone')}" if "model.backbone" in cli
                  else f"--model {config['model']['name']}")
        say(f"Left out, as {chosen} makes them unused: "
            f"{', '.join('model.' + k for k in dropped)} (from {_shown(source)}).")


def _shown(path):
    """A file name as short as it is clear (relative to the current folder
    when inside it)."""
    if not os.path.isabs(path):
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _front_end_recipe(config, cli, *, mode_given, say):
    """``--backbone whisper_base`` over a config written for a CNN: the
    front end's recipe (frozen encoder, cached embeddings, no log-mel
    augmentation) unless ``--mode`` says otherwise."""
    from speechmodel.training.schema import FRONT_ENDS

    model, training = config["model"], config["training"]
    if model["backbone"] not in FRONT_ENDS and not mode_given and training["mode"] == "frozen":
        # A CNN over a config written for a front end: the paper's CNN recipe.
        training["mode"] = "two_stage"
        cli["training.mode"] = "--backbone"
        say(
            f"--backbone {model['backbone']}: training in the paper's two stages (training.mode="
            "two_stage: the CNN fine-tuned on segments, then the head on its cached embeddings; "
            "configs/ravdess_cnn4.json is the tuned CNN recipe); --mode frozen or end_to_end "
            "chooses otherwise."
        )
        return
    if model["backbone"] not in FRONT_ENDS or mode_given or training["mode"] != "two_stage":
        return
    training["mode"] = "frozen"
    training["augment"] = {}
    cli["training.mode"] = "--backbone"
    if model.get("weights") == "imagenet":
        model["weights"] = None
    for key in ("input_size", "preprocessing", "segment_shape", "trainable_backbone"):
        model.pop(key, None)
    say(
        f"--backbone {model['backbone']}: training the head on its frozen embeddings (training.mode=frozen, "
        "no augmentation); pass --mode end_to_end --fine_tune_blocks N to fine-tune it."
    )


def _info(message):
    from absl import logging

    logging.info("%s", message)


def preflight(config, *, quiet_loading=True):
    """Everything that can be checked before TensorFlow is imported and
    before anything is written: files and folders, that the run directory
    can be written, the corpus (loaded: emotions present, speakers) and the
    protocol's folds.

    Returns:
        The run directory.

    Raises:
        ConfigError, RunError: the first problem.
    """
    from absl import logging

    from speechmodel.training.config import default_output_dir
    from speechmodel.training.folds import load_manifests, make_protocol_folds
    from speechmodel.training.paths import check_paths

    run_dir = config["output_dir"] or default_output_dir(config)
    check_paths(config, output_dir=run_dir)
    if config["training"]["init_from"]:
        # The saved model (read, not built) must suit the run.
        from speechmodel.training.deep_fold import adopt_init_from

        adopt_init_from(copy.deepcopy(config))
    # The run says what the corpus holds; here only failures are said
    # (unless this is all there is: --dry_run).
    verbosity = logging.get_verbosity()
    if quiet_loading:
        logging.set_verbosity(logging.ERROR)
    try:
        manifest, test_manifest, _ = load_manifests(config)
        make_protocol_folds(config, manifest, test_manifest)
    finally:
        logging.set_verbosity(verbosity)
    return run_dir


def _discard_new_run_dir(run_dir, existed):
    """A run directory this command created and that holds no result yet
    (setup failed: the model could not be built, ...) is removed, so that
    the corrected command starts clean."""
    if existed or not os.path.isdir(run_dir):
        return
    setup_files = {"config.json", "train.log", ".lock", "manifest.csv", "test_manifest.csv", "folds.json"}
    for root, dirs, files in os.walk(run_dir):
        rel = os.path.relpath(root, run_dir)
        for name in files:
            if rel != "." or name not in setup_files:
                return
    shutil.rmtree(run_dir, ignore_errors=True)


def main(argv):
    from speechmodel.cli import prog
    from speechmodel.errors import Error
    from speechmodel.training.defaults import ConfigError
    from speechmodel.training.run_log import plain_console

    plain_console()
    name = prog("train.py")
    if len(argv) > 1:
        print(f"{name}: error: unexpected argument {argv[1]!r} (flags start with --). Try --help.",
              file=sys.stderr)
        return 2
    try:
        config = config_from_flags(FLAGS)
        if FLAGS.print_config:
            print(json.dumps(config, indent=2))
            return 0
        run_dir = preflight(config, quiet_loading=not FLAGS.dry_run)
    except (Error, ValueError) as exc:  # ValueError: also a loader's UnicodeDecodeError
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    if FLAGS.dry_run:
        print(f"{name}: all checks passed; the run would write {run_dir}")
        return 0
    from speechmodel.training.folds import RunError
    from speechmodel.training.runner import run_experiment

    existed = os.path.exists(run_dir)
    config["output_dir"] = config["output_dir"] or run_dir
    try:
        run_experiment(config, resume=FLAGS.resume)
    except (ConfigError, RunError) as exc:
        _discard_new_run_dir(run_dir, existed)
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def run():
    """The ``speechmodel-train`` command (and ``python train.py``)."""
    from speechmodel.cli import adopt_main_module, flags_parser

    define_flags()
    adopt_main_module(__name__, __doc__)
    app.run(main, flags_parser=flags_parser("train.py"))


if __name__ == "__main__":
    run()

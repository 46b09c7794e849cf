"""Speaker-independent speech emotion recognition experiments.

    python train.py --dataset ravdess --data-dir DIR --epochs 30
    python train.py --dataset ravdess,nemo --data_dir DIR1,DIR2 --protocol loco

Reads configs/<dataset>.json (or --config), applies the flags given on the
command line over it, runs the protocol's folds and writes a run directory
(config.json, metrics.json, predictions.csv, confusion.png, per-fold curves,
TensorBoard logs and models, train.log). Running the same command again
continues an interrupted run. All logic lives in speechmodel.training.
"""

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_string("config", None, "JSON config file (data, never code). Default: configs/<dataset>.json.")
flags.DEFINE_string("dataset", "ravdess", "Corpus: ravdess, emodb, tess, savee, cremad, iemocap, thaiser, nemo, folder or csv (a manifest CSV given as --data-dir); or a comma list of corpora trained on together, e.g. ravdess,nemo (with --data_dir DIR1,DIR2).")
flags.DEFINE_string("data_dir", os.environ.get("SER_DATA_DIR"), "The corpus directory (or CSV file for --dataset csv); with several corpora, one directory per corpus, comma-separated, in the order of --dataset. Default: $SER_DATA_DIR.")
flags.DEFINE_string("test_dataset", None, "Cross-corpus: the corpus to test on (with --protocol cross).")
flags.DEFINE_string("test_data_dir", None, "Cross-corpus: the test corpus directory.")
flags.DEFINE_string("model", None, "speechmodel (DCNN-BLSTMwA), a baseline (alexnet, alexnet_gap, resnet18, resnet34, resnet50, vgg11, vgg16) or a classical one (svm, rf, hgb, knn, mlp, bagging).")
flags.DEFINE_string("backbone", None, "SpeechModel's segment embedder: a pretrained speech front end (whisper_base: Whisper's encoder, the default recipe) or a CNN: alexnet, alexnet_gap, cnn4, resnet18, resnet34, resnet50, resnet50v2, vgg11, vgg16, mobilenetv2, efficientnetb0.")
flags.DEFINE_integer("fine_tune_blocks", None, "With a pretrained front end and --mode end_to_end: train its top N blocks (0: frozen).")
flags.DEFINE_string("weights", None, "Initial CNN weights: imagenet, none, or a local weights file.")
flags.DEFINE_string("mode", None, "end_to_end, two_stage (the paper: fine-tune the CNN on segments, cache embeddings, train the BLSTM head) or frozen.")
flags.DEFINE_string("protocol", None, "loso, kfold (speaker k-fold; RAVDESS: 6 folds of 4 actors), session (IEMOCAP), holdout, cross, all (one deployable model on every speaker); with several corpora also loco (leave one corpus out, on the emotions all corpora share) or multi (speaker k-fold inside each corpus: fold i tests group i of every corpus; RAVDESS keeps its 6 actor folds).")
flags.DEFINE_integer("folds", None, "k of the kfold and multi protocols.")
flags.DEFINE_list("holdout_speakers", None, "Test speakers of the holdout protocol.")
flags.DEFINE_string("val_speakers", None, "Validation speakers taken from the training speakers: a count or a comma list.")
flags.DEFINE_bool("random_split", False, "Split utterances at random, mixing speakers between train and test (NOT speaker independent; warns).")
flags.DEFINE_string("emotions", None, "Comma list of emotions to keep, e.g. angry,happy,neutral,sad. Several corpora keep the union of their emotions (loco: those all share) unless this restricts them.")
flags.DEFINE_integer("epochs", None, "Training epochs (early stopping on the validation speakers may stop sooner).")
flags.DEFINE_integer("batch_size", None, "Utterances per batch and per replica (the global batch is this times the replicas).")
flags.DEFINE_float("learning_rate", None, "Learning rate for one replica (scaled linearly with the replicas).")
flags.DEFINE_string("augment", None, "none, or a comma list of: noise, speed, pitch, specaugment, mixup (settings from the config's training.augment, else defaults).")
flags.DEFINE_string("balance", None, "Class balance on the training folds: none, oversample or class_weights.")
flags.DEFINE_string("strategy", None, "default (one device), mirrored (all local GPUs) or multiworker (TF_CONFIG).")
flags.DEFINE_string("mixed_precision", None, "float32, mixed_float16, mixed_bfloat16 or auto.")
flags.DEFINE_integer("seed", None, "Seed of folds, shuffling, initialisation and augmentation.")
flags.DEFINE_string("output_dir", None, "Run directory. Default: runs/<dataset>-<model>-<protocol>-<config hash>.")
flags.DEFINE_bool("resume", True, "Continue the run in --output-dir if it holds the same experiment (finished folds are kept).")
flags.DEFINE_bool("print_config", False, "Print the resolved config and exit.")


def main(argv):
    del argv
    from speechmodel.training.cli import config_from_flags
    from speechmodel.training.config import ConfigError
    from speechmodel.training.runner import RunError, run_experiment

    try:
        config = config_from_flags(FLAGS)
        if FLAGS.print_config:
            print(json.dumps(config, indent=2))
            return 0
        run_experiment(config, resume=FLAGS.resume)
    except (ConfigError, RunError) as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return 2
    return 0


def run():
    """The ``speechmodel-train`` command (and ``python train.py``)."""
    from speechmodel.cli import adopt_main_module

    from speechmodel.cli import flags_parser

    adopt_main_module(__name__, __doc__)
    app.run(main, flags_parser=flags_parser("train.py"))


if __name__ == "__main__":
    run()

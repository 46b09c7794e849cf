"""Does ImageNet initialisation help? AlexNet from ImageNet vs random weights.

    python benchmarks/imagenet_alexnet.py [--data-dir DIR] [--weights FILE] [--root DIR]
    python benchmarks/imagenet_alexnet.py --quick      # a tiny slice: checks the script

Zhang et al. (2021) start their CNN from ImageNet and credit the transfer
for part of the accuracy. Here the same experiment runs twice, changing only
the CNN's initial weights:

* ``imagenet``: AlexNet's five convolutions from torchvision's ImageNet
  AlexNet (``--weights``: default ``$SPEECHMODEL_ALEXNET_IMAGENET``, else
  the ImageNet AlexNet convolutions in ``../shared/weights/
  alexnet_imagenet_conv/lpips_alex_v0.1.pt``, else ``"imagenet"``, the
  torchvision download);
* ``random``: the same network from Keras' random initialisation.

Protocol: RAVDESS, 8 emotions, the 6 speaker folds of ``configs/ravdess.json``
(actors 1-4, 5-8, ..., 21-24 as test folds; validation actors taken from the
training actors; UAR and WA pooled over all 1440 test utterances). Recipe:
the paper's two stages as ``configs/emodb.json`` encodes them (this
toolkit's paper setting): 64-band log-mel segments of 64 frames (hop 32),
static + delta + delta-delta, min-max scaled to [0, 1] and normalised as
ImageNet images (``preprocessing="imagenet"``); stage 1 fine-tunes the CNN
on segment labels, stage 2 caches the segment embeddings, stage 3 trains the
BLSTM (256) + attention (256) + DNN (512, 256, dropout 0.5) head on them;
Adam 1e-4, 128 segments / 16 utterances per batch, added-noise
augmentation in stage 1, oversampling of the rarer classes; early stopping
and the checkpoint on validation UAR. Seed 0, one run per arm.

Deviations from the paper, to finish in about 20-30 minutes on 2 CPU cores
(each is a flag):

* the network is ``alexnet_gap`` (the five ImageNet convolutions + global
  average pooling, 256-d; seed 000's FCN+GAP) instead of the paper's 4096-d
  ``fc7`` AlexNet (``--backbone alexnet``): the offline weights hold only
  the convolutions, so fc6/fc7 (55 M of AlexNet's 61 M parameters) would
  start random in both arms, and they make stage 1 about 5 times slower;
* the CNN sees the 64x64 segments as they are instead of resized to 227x227
  (``--input-size 227``): 12.6 times fewer pixels, so the ImageNet filters
  meet spectrogram patterns at a smaller scale than the objects they learnt;
* 2 stage-1 epochs (``--segment-epochs``; configs/emodb.json: 10) and at
  most 20 head epochs with early-stopping patience 5 (``--epochs``,
  ``--patience``; emodb.json: 50 and 10). Measured on this machine's kind
  (2 cores): a stage-1 epoch of ``alexnet_gap`` on 64x64 segments is about
  11,600 segments at roughly 600 per second plus the log-mel features,
  about 25 s; a head epoch about 2.5 s; so about 2 minutes per fold and
  20-25 minutes for the 12 folds of both arms. A short budget is where an
  initialisation matters most: with the paper's 10 + 50 epochs the gap may
  shrink;
* RAVDESS, which the paper does not report, instead of EMO-DB / IEMOCAP
  (not available here).

Each arm is a normal train.py experiment in ``--root``/<arm> (an interrupted
benchmark resumes where it stopped). The table is made from the run
directories by ``speechmodel.training.report`` (the initialisation added to
each row's model name) and written to
``benchmarks/results/imagenet_alexnet.md`` and ``.json`` (``--quick``: into
``--root`` only).
"""

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, ravdess_dir  # noqa: E402

SHARED_CONV = REPO.parent / "shared" / "weights" / "alexnet_imagenet_conv" / "lpips_alex_v0.1.pt"
ARMS = ("imagenet", "random")
QUICK_ACTORS = ("01", "02", "03", "04")
QUICK_EMOTIONS = ["neutral", "happy", "sad", "angry"]


def default_weights():
    """The ImageNet weights of the ``imagenet`` arm (see the docstring)."""
    if os.environ.get("SPEECHMODEL_ALEXNET_IMAGENET"):
        return "imagenet"
    if SHARED_CONV.is_file():
        return str(SHARED_CONV.resolve())
    return "imagenet"


def build_config(arm, *, data_dir, root, weights, backbone, input_size, segment_epochs,
                 epochs, patience, quick=False):
    """The train.py config of one arm: configs/emodb.json's recipe on the
    RAVDESS protocol of configs/ravdess.json, with the sizes above."""
    from speechmodel.training.config import load_config

    paper = load_config(REPO / "configs" / "emodb.json")
    ravdess = load_config(REPO / "configs" / "ravdess.json")
    config = copy.deepcopy(paper)
    config["dataset"] = dict(ravdess["dataset"], data_dir=str(data_dir))
    config["protocol"] = copy.deepcopy(ravdess["protocol"])
    config["model"].update(
        backbone=backbone,
        weights=weights if arm == "imagenet" else None,
        input_size=None if input_size in (None, 0, 64) else input_size,
    )
    config["training"].update(segment_epochs=segment_epochs, epochs=epochs, patience=patience)
    if quick:
        config["dataset"]["emotions"] = list(QUICK_EMOTIONS)
        config["protocol"].update(k=2)
    config["output_dir"] = os.path.join(root, arm)
    return config


def quick_corpus(data_dir, into):
    """Actors 1-4, neutral/happy/sad/angry, normal intensity, statement 1:
    32 real files linked in RAVDESS' layout."""
    for actor in QUICK_ACTORS:
        folder = Path(into) / f"Actor_{actor}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in sorted((Path(data_dir) / f"Actor_{actor}").glob("03-01-0[1345]-01-01-*.wav")):
            target = folder / f.name
            if not target.exists():
                os.symlink(f, target)
    return into


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--weights", default=None,
                        help="ImageNet weights of the imagenet arm (default: see the docstring)")
    parser.add_argument("--root", default=None,
                        help="run directories (default runs/imagenet_alexnet; --quick: a temp dir)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--backbone", default="alexnet_gap", choices=("alexnet_gap", "alexnet"))
    parser.add_argument("--input-size", type=int, default=64,
                        help="image size the CNN sees (64: the segments unresized; the paper: 227)")
    parser.add_argument("--segment-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny slice (4 actors, 4 emotions, 2 folds, 1+2 epochs) to check the script")
    args = parser.parse_args(argv)

    from absl import logging

    from speechmodel.training import artifacts, report
    from speechmodel.training.runner import run_experiment

    logging.set_verbosity(logging.INFO)  # train.log says which weights each fold loaded

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; known: {', '.join(ARMS)}")
    data_dir = ravdess_dir(args.data_dir)
    weights = args.weights or default_weights()
    sizes = dict(segment_epochs=args.segment_epochs, epochs=args.epochs, patience=args.patience)
    if args.quick:
        root = args.root or tempfile.mkdtemp(prefix="imagenet_alexnet_quick_")
        data_dir = quick_corpus(data_dir, os.path.join(root, "ravdess_slice"))
        sizes = dict(segment_epochs=1, epochs=2, patience=2)
    else:
        root = args.root or str(REPO / "runs" / "imagenet_alexnet")
    print(f"imagenet arm weights: {weights}", flush=True)

    run_dirs = []
    for arm in arms:
        config = build_config(
            arm, data_dir=data_dir, root=root, weights=weights, backbone=args.backbone,
            input_size=args.input_size, quick=args.quick, **sizes,
        )
        start = time.time()
        run_experiment(config)
        print(f"{arm}: {time.time() - start:.0f} s", flush=True)
        run_dirs.append((arm, config["output_dir"]))

    rows = []
    for arm, run_dir in run_dirs:
        row = report.row(run_dir)
        init = f"ImageNet init from {os.path.basename(weights)}" if arm == "imagenet" else "random init"
        row["model"] = f"{row['model']}, {init}"
        rows.append(row)
    table = report.markdown(rows)
    print(table, end="")
    out = Path(root) if args.quick else REPO / "benchmarks" / "results"
    artifacts.atomic_write_text(str(out / "imagenet_alexnet.md"), table)
    artifacts.write_json(str(out / "imagenet_alexnet.json"), rows)
    print(f"table: {out / 'imagenet_alexnet.md'}", flush=True)


if __name__ == "__main__":
    main()

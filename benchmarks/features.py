"""Feature throughput: the tf.data pipeline vs a sequential librosa reference.

    python benchmarks/features.py [--data-dir DIR] [--repeats 3] [--limit N]

Both compute the same three-channel log-mel segments for every RAVDESS file
(decode, resample if needed, log-mel, deltas, normalisation, framing). The
pipeline runs with its default parallelism and no cache; each repeat is a
full pass. Prints utterances per second (median of the repeats) and writes
benchmarks/results/features.json.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.common import REPO, machine, ravdess_dir, ravdess_files, timed, write_json  # noqa: E402


def librosa_reference(path, config):
    """The same features with librosa/numpy, one file at a time."""
    import librosa

    y, _ = librosa.load(path, sr=config.sample_rate, mono=True, res_type="soxr_hq")
    S = librosa.feature.melspectrogram(
        y=y, sr=config.sample_rate, n_fft=config.fft_length,
        hop_length=config.hop_length, win_length=config.win_length,
        window="hann", center=True, pad_mode="constant", power=config.power,
        n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
        htk=config.mel_scale == "htk", norm=config.mel_norm,
    )
    L = librosa.power_to_db(S, ref=1.0, amin=config.amin, top_db=config.top_db)
    if L.shape[1] < config.delta_width:
        L = np.concatenate([L, np.repeat(L[:, -1:], config.delta_width - L.shape[1], 1)], 1)
    x = np.stack([L, librosa.feature.delta(L, width=config.delta_width, order=1),
                  librosa.feature.delta(L, width=config.delta_width, order=2)], -1)
    x = x.transpose(1, 0, 2)
    if config.normalization == "standard":
        x = (x - x.mean((0, 1))) / np.maximum(x.std((0, 1)), 1e-5)
    frames, seg, hop = x.shape[0], config.segment_frames, config.segment_hop
    n = 1 + -(-max(0, frames - seg) // hop)
    x = np.pad(x, [(0, (n - 1) * hop + seg - frames), (0, 0), (0, 0)])
    return np.stack([x[i * hop : i * hop + seg] for i in range(n)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16, help="the training default")
    args = parser.parse_args()

    from speechmodel.config import FeatureConfig
    from speechmodel.pipeline import make_dataset

    files = ravdess_files(ravdess_dir(args.data_dir))[: args.limit]
    config = FeatureConfig()

    def run_pipeline():
        n = 0
        for x in make_dataset(files, config=config, batch_size=args.batch_size):
            n += int(x["mask"].shape[0])
        assert n == len(files), n
        return n

    def run_reference():
        return sum(librosa_reference(f, config).shape[0] > 0 for f in files)

    run_pipeline()  # warm-up: graph tracing, file system cache
    librosa_reference(files[0], config)
    t_pipe, all_pipe, _ = timed(run_pipeline, args.repeats)
    t_ref, all_ref, _ = timed(run_reference, args.repeats)
    result = {
        "files": len(files),
        "repeats": args.repeats,
        "pipeline_utt_per_s": len(files) / t_pipe,
        "reference_utt_per_s": len(files) / t_ref,
        "speedup": t_ref / t_pipe,
        "pipeline_seconds": all_pipe,
        "reference_seconds": all_ref,
        "machine": machine(),
    }
    print(f"files: {len(files)}, median of {args.repeats} passes")
    print(f"tf.data pipeline : {result['pipeline_utt_per_s']:8.1f} utt/s")
    print(f"librosa reference: {result['reference_utt_per_s']:8.1f} utt/s")
    print(f"speedup          : {result['speedup']:8.2f}x")
    write_json(REPO / "benchmarks" / "results" / "features.json", result)


if __name__ == "__main__":
    main()

"""``training.mode finetune``: a pretrained front end's top blocks and the
head, trained end to end on a CPU from cached lower-block states.

The encoder's lower ``num_blocks - fine_tune_blocks`` blocks do not train,
so what they compute is computed once per file and kept in the embedding
cache (``speechmodel.training.embeddings.cached_lower_states``: their
segment embeddings, and the residual stream entering the first tuned block,
per 20 ms token, in float16). Each epoch then runs only the tuned blocks
(full blocks, or their low-rank adapters with ``model.lora_rank``), the
same segment pooling and the head (``CachedTopBlocks``), with exact
masking of padded tokens and segments. The encoder learns at
``training.encoder_lr_scale`` times the head's rate, less by
``training.layer_decay`` per block down, after a linear warm-up of
``training.warmup_steps`` steps (``optimizers.make_optimizer``, shared with
``--mode end_to_end``); ``training.frame_mask`` masks spans of cached
states (SpecAugment's time masks). The model saved is the whole
``AudioSpeechModel``, from waveforms: its frozen blocks by checksum, the
tuned blocks or adapters inside.
"""

import os

import numpy as np

from speechmodel.training.embeddings import EmbeddingCache
from speechmodel.training.embeddings import cached_lower_states
from speechmodel.training.embeddings import default_cache_dir
from speechmodel.training.optimizers import make_optimizer


def state_dataset(table, paths, labels, *, batch_size, shuffle, seed, epoch=None):
    """Padded batches of ``CachedTopBlocks``' inputs and the labels, from
    ``{path: (embeddings, states)}``; files missing from ``table`` (failed)
    are left out. The shuffle of a pass is a function of ``(seed, epoch)``."""
    import tensorflow as tf

    from speechmodel.pipeline import finish
    from speechmodel.training.two_stage import padded_dataset

    rows = [(table[p], int(y)) for p, y in zip(paths, labels) if p in table]
    ds = padded_dataset(
        [[r[0][0] for r in rows], [r[0][1] for r in rows]], [r[1] for r in rows],
        batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
    )

    def inputs(lower, states, counts, tokens, y):
        mask = tf.sequence_mask(counts, tf.shape(lower)[1])
        return {"lower": lower, "mask": mask, "states": states, "token_lengths": tokens}, y

    return finish(ds.map(inputs))


def train(model, config, data, class_names, fold_dir, seed, strategy, batch_size, learning_rate,
          failures, *, progress=None, label=None, key=None):
    """Fine-tunes ``model``'s top blocks and head on one fold from the
    cache; returns the figures for result.json (as ``two_stage.train``,
    with ``test_predictions``)."""
    from speechmodel.config import FeatureConfig
    from speechmodel.models.cached_top_blocks import CachedTopBlocks
    from speechmodel.progress import Reporter
    from speechmodel.training.two_stage import cached_splits, fit_fold

    training = config["training"]
    features = FeatureConfig.from_dict(config["features"])
    progress = progress or Reporter()
    label = label or os.path.basename(fold_dir)
    key = key if key is not None else os.path.basename(fold_dir)
    encoder = model.embedder.encoder
    cache = EmbeddingCache(default_cache_dir(training.get("embedding_cache")))
    tuned = (f"low-rank adapters (rank {encoder.lora_rank}) on the top {encoder.fine_tune_blocks}"
             if encoder.lora_rank else f"the top {encoder.fine_tune_blocks}")
    progress.say(
        f"{label}: the lower {encoder.first_tuned_block} encoder blocks' states (cached in "
        f"{cache.directory}), then {tuned} block{'' if encoder.fine_tune_blocks == 1 else 's'} "
        f"and the head, {training['epochs']} epoch{'' if training['epochs'] == 1 else 's'}"
    )
    out = {}
    tables = cached_splits(
        lambda paths, update: cached_lower_states(
            cache, model.embedder, paths, features=features, batch_size=batch_size,
            failures=failures, progress=update,
        ),
        data, ("train", "val", "test"), progress=progress,
        label=f"{label}: {{split}} lower-block states", out=out, hit_key="{split}_states_cached",
    )

    with strategy.scope():
        trainer = CachedTopBlocks(model, frame_mask=training["frame_mask"], seed=seed)
    out["seconds_per_epoch"] = fit_fold(
        trainer, lambda: make_optimizer(training, learning_rate, model=model), state_dataset,
        tables, data, strategy=strategy, fold_dir=fold_dir, class_names=class_names,
        training=training, batch_size=batch_size, seed=seed, out=out,
        report=progress.fit(f"{label} top blocks + head", training["epochs"], key=(key, "finetune")),
    )
    if "val" in tables:  # For the model's calibration.
        out["val_predictions"] = predictions(trainer, tables["val"], data["val"][0], batch_size)
    if "test" in tables:
        out["test_predictions"] = predictions(trainer, tables["test"], data["test"][0], batch_size)
    return out


def predictions(trainer, table, paths, batch_size):
    """``(probabilities (n, C), kept positions in paths)`` of a
    ``CachedTopBlocks`` on cached states; failed files are left out."""
    kept = [i for i, p in enumerate(paths) if p in table]
    if not kept:
        return np.zeros((0, trainer.model.output_shape[-1])), []
    ds = state_dataset(
        table, [paths[i] for i in kept], np.zeros(len(kept), np.int32),
        batch_size=batch_size, shuffle=False, seed=0,
    )
    chunks = [np.asarray(trainer(x, training=False), np.float64) for x, _ in ds]
    return np.concatenate(chunks), kept

"""Spectrogram augmentation, per batch on the normalised three-channel
log-mel segments: SpecAugment (``build_features_augment``,
``spec_augment``), the same masks on the frames that overlapping segments
share."""

import numbers

import tensorflow as tf

from speechmodel.augment.settings import Augmentation, count, fail, probability


def _mask_rows(starts, widths, active, length):
    """(B, K) intervals [start, start + width) -> bool (B, length): frames
    covered by an active interval (a +1/-1 difference array, summed)."""
    b = tf.shape(starts)[0]
    size = length + 1
    row = tf.range(b)[:, tf.newaxis] * size
    weight = tf.cast(active, tf.int32)
    ends = tf.minimum(starts + widths, length)
    index = tf.concat([tf.reshape(row + starts, [-1]), tf.reshape(row + ends, [-1])], 0)
    delta = tf.concat([tf.reshape(weight, [-1]), -tf.reshape(weight, [-1])], 0)
    diff = tf.math.unsorted_segment_sum(delta, index, b * size)
    covered = tf.cumsum(tf.reshape(diff, [b, size]), axis=1) > 0
    return covered[:, :length]


def spec_augment(
    segments,
    mask,
    seeds,
    *,
    freq_masks=2,
    freq_width=8,
    time_masks=2,
    time_width=10,
    segment_hop=32,
    p=1.0,
):
    """SpecAugment masks (Park et al., 2019) on batches of segments.

    For each utterance, with probability ``p``:

    * ``freq_masks`` frequency masks, each of ``w ~ U{0..freq_width}`` mel
      bands starting at ``f0 ~ U{0..n_mels - w}``: the same bands in all
      its segments and channels;
    * time masks on the utterance's own timeline: frame ``j`` of segment
      ``k`` is utterance frame ``k * segment_hop + j``, so a masked frame is
      masked in every segment that holds it (segments overlap). There are
      ``time_masks`` masks per valid segment (long and short utterances are
      masked in the same proportion), each of ``w ~ U{0..time_width}``
      frames starting uniformly within the utterance's segment span.

    Masked values are set to 0, the utterance mean after ``standard``
    normalisation. Padded segments (``mask`` False) are left as they are
    (all zeros from the pipeline). Each utterance's masks depend only on
    its own seed, so the same seeds give the same output.

    Args:
        segments: float (B, N, frames, n_mels, channels).
        mask: bool (B, N), True for valid segments.
        seeds: int (B, 2) stateless seeds, one per utterance.
        freq_masks, freq_width, time_masks, time_width: as above.
        segment_hop: frames between segment starts (the FeatureConfig's).
        p: probability that an utterance is masked.

    Returns:
        The masked segments, same shape and dtype.
    """
    for name, value in (
        ("freq_masks", freq_masks), ("freq_width", freq_width),
        ("time_masks", time_masks), ("time_width", time_width),
    ):
        count("specaugment", name, value)
    if not isinstance(segment_hop, numbers.Integral) or segment_hop <= 0:
        raise ValueError(f"`segment_hop` must be a positive integer. Received: segment_hop={segment_hop!r}")
    p = probability("specaugment", p)
    segments = tf.convert_to_tensor(segments)
    mask = tf.cast(tf.convert_to_tensor(mask), tf.bool)
    if segments.shape.rank != 5:
        raise ValueError(
            "`segments` must be (batch, segments, frames, n_mels, channels). "
            f"Received: shape={segments.shape}"
        )
    frames, n_mels = segments.shape[2], segments.shape[3]
    if n_mels is not None and freq_width > n_mels:
        fail("specaugment", "freq_width", freq_width, f"must be <= the {n_mels} mel bands")
    if frames is not None and time_width > frames:
        fail("specaugment", "time_width", time_width, f"must be <= the {frames} frames of a segment")
    if p == 0 or (freq_masks * freq_width == 0 and time_masks * time_width == 0):
        return segments
    frames = frames if frames is not None else tf.shape(segments)[2]
    n_mels = n_mels if n_mels is not None else tf.shape(segments)[3]
    seeds = tf.reshape(tf.cast(seeds, tf.int64), [-1, 2])
    num = tf.shape(segments)[1]
    k_time = time_masks * num
    counts = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)  # (B,)
    span = (counts - 1) * segment_hop + frames  # (B,) frames of the timeline
    timeline = (num - 1) * segment_hop + frames

    def draw(seed):
        keys = tf.random.experimental.stateless_split(seed, num=5)
        return (
            tf.random.stateless_uniform([], keys[0]),
            tf.random.stateless_uniform([freq_masks], keys[1], minval=0, maxval=freq_width + 1, dtype=tf.int32),
            tf.random.stateless_uniform([freq_masks], keys[2]),
            tf.random.stateless_uniform([k_time], keys[3], minval=0, maxval=time_width + 1, dtype=tf.int32),
            tf.random.stateless_uniform([k_time], keys[4]),
        )

    gate, f_width, f_start, t_width, t_start = tf.map_fn(
        draw,
        seeds,
        fn_output_signature=(
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([freq_masks], tf.int32),
            tf.TensorSpec([freq_masks], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.float32),
        ),
    )
    hit = gate < p  # (B,)
    f_start = tf.cast(tf.floor(f_start * tf.cast(n_mels - f_width + 1, tf.float32)), tf.int32)
    f_start = tf.minimum(f_start, n_mels - f_width)
    bands = _mask_rows(f_start, f_width, tf.ones_like(f_width, tf.bool), n_mels)  # (B, F)
    room = tf.maximum(span[:, tf.newaxis] - t_width + 1, 1)
    t_start = tf.minimum(
        tf.cast(tf.floor(t_start * tf.cast(room, tf.float32)), tf.int32), room - 1
    )
    active = tf.range(k_time)[tf.newaxis, :] < time_masks * counts[:, tf.newaxis]
    times = _mask_rows(t_start, t_width, active, timeline)  # (B, timeline)
    index = (
        tf.range(num)[:, tf.newaxis] * segment_hop + tf.range(frames)[tf.newaxis, :]
    )  # (N, frames)
    seg_times = tf.gather(times, index, axis=1)  # (B, N, frames)
    masked = seg_times[:, :, :, tf.newaxis] | bands[:, tf.newaxis, tf.newaxis, :]
    masked &= (hit[:, tf.newaxis] & mask)[:, :, tf.newaxis, tf.newaxis]
    return tf.where(masked[..., tf.newaxis], tf.zeros([], segments.dtype), segments)


def build_features_augment(config, *, feature_config=None):
    """The per-batch feature augmentation (SpecAugment) of a description.

    Args:
        config: a dict as in the module docstring (or an Augmentation);
            only ``specaugment`` is used here.
        feature_config: the FeatureConfig of the segments (default
            ``FeatureConfig()``): its ``segment_hop`` places the time masks,
            and the mask widths are checked against its sizes.

    Returns:
        ``fn(segments, mask, seeds) -> segments`` (see :func:`spec_augment`)
        or ``None`` when SpecAugment is off or has ``p == 0``.
    """
    from speechmodel.config import FeatureConfig

    aug = Augmentation.from_dict(config)
    feature_config = FeatureConfig.from_dict(feature_config or FeatureConfig())
    s = aug.specaugment
    if s is None or s.p == 0 or (s.freq_masks * s.freq_width == 0 and s.time_masks * s.time_width == 0):
        return None
    if s.freq_width > feature_config.n_mels:
        fail("specaugment", "freq_width", s.freq_width, f"must be <= n_mels={feature_config.n_mels}")
    if s.time_width > feature_config.segment_frames:
        fail(
            "specaugment", "time_width", s.time_width,
            f"must be <= segment_frames={feature_config.segment_frames}",
        )
    kwargs = dict(s.to_dict(), segment_hop=feature_config.segment_hop)

    def features_augment(segments, mask, seeds):
        return spec_augment(segments, mask, seeds, **kwargs)

    return features_augment

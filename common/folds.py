"""K-fold cross-validation of a domain's training split, for `lrsuite tune --folds K`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from common.domain import DataBundle, Domain
from common.errors import UserError


def check_foldable(domain: Domain, cfg, folds: int) -> None:
    """Folds only where the domain says they suit the config (`Domain.fold_problem`)."""
    if folds < 2 or domain.fold_problem is None:
        return
    problem = domain.fold_problem(cfg)
    if problem:
        raise UserError(f"--folds {folds}: {domain.name} cannot be cross-validated: {problem}. "
                        "Use --folds 1.")


def fold_bundles(bundle: DataBundle, folds: int, batch_size: int, seed: int) -> list[DataBundle]:
    """K (train, validation) splits of one shuffled pass over the training pipeline.

    The pass is held in memory, so this suits training sets of up to some 100k small
    examples. Examples keep the padding of the batch they came from (padded batches,
    as in translation, are re-padded). The test split is untouched; each fold's held-out
    part replaces the validation split.
    """
    spec = bundle.train.unbatch().element_spec
    batches = bundle.train_examples // batch_size
    examples = list(bundle.train.take(batches).unbatch().as_numpy_iterator())
    if len(examples) < 2 * folds:
        raise UserError(f"--folds {folds}: only {len(examples)} training examples; use "
                        "fewer folds.")

    def dataset(indices):
        items = [examples[i] for i in indices]
        data = tf.data.Dataset.from_generator(lambda: iter(items), output_signature=spec)
        # A known size lets Keras end validation quietly instead of "ran out of data".
        return data.apply(tf.data.experimental.assert_cardinality(len(items)))

    edges = np.linspace(0, len(examples), folds + 1).astype(int)
    out = []
    for k in range(folds):
        held = np.arange(edges[k], edges[k + 1])
        keep = np.setdiff1d(np.arange(len(examples)), held)
        if len(keep) < batch_size:
            raise UserError(f"--folds {folds}: a fold leaves {len(keep)} training examples, "
                            f"fewer than batch_size {batch_size}.")
        out.append(DataBundle(
            train=dataset(keep).cache().shuffle(len(keep), seed=seed)
            .padded_batch(batch_size, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE),
            val=dataset(held).cache().padded_batch(batch_size),
            test=bundle.test,
            train_examples=len(keep),
            description=f"{bundle.description} (fold {k + 1} of {folds})",
            info=bundle.info,
        ))
    return out

"""DataLoaders over in-memory records, with length-bucketed batching for text."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from polymodal.data.collate import field_value
from polymodal.records import Record


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of records of similar length, so padding (and compute) stays small.

    Indices are shuffled, cut into pools of ``pool_batches`` batches, sorted by length inside
    each pool, batched, and the batches shuffled again. Deterministic for a given seed and
    epoch (``set_epoch``).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, pool_batches: int = 50, rank: int = 0,
                 world_size: int = 1) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0
        self.start = 0
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's batch order; ``start`` skips batches already trained on (a
        run resumed mid-epoch)."""
        self.epoch, self.start = epoch, start

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start:start + self.pool], key=lambda i: self.lengths[i])
            batches.extend(pool[i:i + self.batch_size]
                           for i in range(0, len(pool), self.batch_size))
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        """This rank's share of each global batch: every rank sees the same batch order and
        takes every ``world_size``-th record of each batch (distributed data parallel)."""
        for batch in self.batches()[self.start:]:
            yield batch[self.rank::self.world_size]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


class ShuffledBatchSampler(BucketBatchSampler):
    """Plain shuffled batches, with the same seeding and ``set_epoch`` as the bucketed one."""

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]


class GroupedBatchSampler(BucketBatchSampler):
    """Shuffled batches in which records sharing a group key (the image several questions
    ask about) sit together: groups are shuffled, each group's records shuffled, and the
    concatenation cut into batches, which are shuffled again. A batch then holds a few
    groups whole, so a shared input is processed and encoded once for all of them."""

    def __init__(self, groups: Sequence[Any], batch_size: int, **kwargs: Any) -> None:
        super().__init__([1] * len(groups), batch_size, **kwargs)
        members: dict[Any, list[int]] = {}
        for index, key in enumerate(groups):
            members.setdefault(key, []).append(index)
        self.groups = list(members.values())

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        groups = [list(g) for g in self.groups]
        if self.shuffle:
            rng.shuffle(groups)
            for group in groups:
                rng.shuffle(group)
        order = [i for group in groups for i in group]
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches


def record_lengths(records: list[Record], model: Any) -> list[int]:
    """Sum of each record's processor length estimates, over all inputs."""
    lengths = [0] * len(records)
    for inp in model.spec.inputs:
        processor = model.processors[inp.name]
        for i, record in enumerate(records):
            lengths[i] += processor.length(field_value(record, inp))
    return lengths


def length_chunks(lengths: Sequence[int], max_batch: int, *, slack: float = 1.3,
                  min_tokens: int = 512) -> list[list[int]]:
    """Indices cut into batches of similar length, shortest first: a record joins the
    current batch while the padded size (batch size x longest length) stays within
    ``slack`` times the real tokens, or under ``min_tokens`` (tiny batches are all call
    overhead). Padding a short review to the longest in a mixed batch costs more on a CPU
    than batching saves; these batches keep the saving (docs/serving.md)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i in order:
        length = max(int(lengths[i]), 1)
        padded = (len(current) + 1) * length
        if current and (len(current) >= max_batch
                        or padded > max(slack * (tokens + length), min_tokens)):
            chunks.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += length
    if current:
        chunks.append(current)
    return chunks


def make_loader(records: list[Record], collate: Any, *, batch_size: int, shuffle: bool,
                seed: int, lengths: list[int] | None = None, groups: list[Any] | None = None,
                num_workers: int = 0, pin_memory: bool = False, rank: int = 0,
                world_size: int = 1) -> DataLoader:
    """A DataLoader yielding collated batches. With ``groups`` (a hashable key per record),
    records sharing a key are batched together; else with ``lengths``, batches are
    bucketed; with ``world_size`` > 1, each rank gets its share of every global batch of
    ``batch_size``."""
    options: dict[str, Any] = {"shuffle": shuffle, "seed": seed, "rank": rank,
                               "world_size": world_size}
    sampler: BucketBatchSampler
    if groups is not None:
        sampler = GroupedBatchSampler(groups, batch_size, **options)
    elif lengths is not None:
        sampler = BucketBatchSampler(lengths, batch_size, **options)
    else:
        sampler = ShuffledBatchSampler([1] * len(records), batch_size, **options)
    return DataLoader(
        records,  # type: ignore[arg-type]  # a list is a map-style dataset
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        # Its own generator: creating an iterator must not draw from the global RNG, or a
        # run resumed mid-epoch would see different dropout masks than an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
    )

"""Dynamic batching: requests for one model queue up; a batch forms until it holds
``max_batch_size`` records or ``max_delay_s`` has passed since its first request; one
prediction call serves the whole batch and each request gets its own slice back.

The prediction runs in a worker thread so the event loop keeps accepting requests.

Waiting only pays when another request is likely to arrive within the delay: the batcher
keeps a moving average of the gap between arrivals and, when requests come further apart
than ``max_delay_s`` (low load), sends a lone request straight to the model instead of
holding it for company that will not come.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


class QueueFull(Exception):
    """The model's queue is at its bound; the client should retry later."""


@dataclass
class _Pending:
    records: list[Record]
    future: asyncio.Future[list[dict[str, Any]]] = field(repr=False)


class DynamicBatcher:
    def __init__(self, predict: Callable[[list[Record]], list[dict[str, Any]]], *,
                 max_batch_size: int = 32, max_delay_s: float = 0.005,
                 max_queue: int = 256,
                 on_batch: Callable[[int], None] | None = None,
                 executor: ThreadPoolExecutor | None = None) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self.on_batch = on_batch or (lambda size: None)
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        # The thread that runs predictions; the server passes one shared by all its models
        # (and used to load them): CPU kernels run fastest when one thread drives torch.
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1,
                                                        thread_name_prefix="predict")
        self._busy = False
        self._last_arrival = 0.0
        self._mean_gap_s = float("inf")

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being predicted)."""
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, records: list[Record]) -> list[dict[str, Any]]:
        assert self._queue is not None, "start() the batcher first"
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull
        future: asyncio.Future[list[dict[str, Any]]] = \
            asyncio.get_running_loop().create_future()
        self._note_arrival()
        self._queue.put_nowait(_Pending(records, future))
        return await future

    def _note_arrival(self) -> None:
        now = time.monotonic()
        if self._last_arrival:
            gap = now - self._last_arrival
            self._mean_gap_s = gap if self._mean_gap_s == float("inf") \
                else 0.8 * self._mean_gap_s + 0.2 * gap
        self._last_arrival = now

    @property
    def worth_waiting(self) -> bool:
        """Whether another request is expected within the delay (arrivals are close)."""
        return self._mean_gap_s < self.max_delay_s

    async def _collect(self, first: _Pending) -> list[_Pending]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch, size = [first], len(first.records)
        delay = self.max_delay_s if self.worth_waiting or not self._queue.empty() else 0.0
        deadline = loop.time() + delay
        while size < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0 and self._queue.empty():
                break
            try:
                item = self._queue.get_nowait() if remaining <= 0 else \
                    await asyncio.wait_for(self._queue.get(), remaining)
            except (TimeoutError, asyncio.QueueEmpty):
                break
            if item.future.done():  # the client gave up (timeout) while queued
                continue
            if size + len(item.records) > self.max_batch_size:
                self._queue.put_nowait(item)  # too big for this batch: next one
                break
            batch.append(item)
            size += len(item.records)
        return batch

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first.future.done():
                continue
            batch = await self._collect(first)
            records = [r for item in batch for r in item.records]
            self.on_batch(len(records))
            self._busy = True
            try:
                results = await loop.run_in_executor(self._executor, self.predict, records)
            except Exception as exc:  # one bad batch must not stop the batcher
                if len(batch) == 1:
                    if not batch[0].future.done():
                        batch[0].future.set_exception(exc)
                else:  # one bad request must not fail the others batched with it
                    await self._one_by_one(batch)
                continue
            finally:
                self._busy = False
            start = 0
            for item in batch:
                end = start + len(item.records)
                if not item.future.done():
                    item.future.set_result(results[start:end])
                start = end

    async def _one_by_one(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        for item in batch:
            if item.future.done():
                continue
            try:
                result = await loop.run_in_executor(self._executor, self.predict,
                                                    item.records)
            except Exception as exc:
                item.future.set_exception(exc)
            else:
                item.future.set_result(result)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Let queued requests finish (graceful shutdown), then stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (self._queue is not None and (not self._queue.empty() or self._busy)
               and loop.time() < deadline):
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
        if self._own_executor:
            self._executor.shutdown(wait=True)

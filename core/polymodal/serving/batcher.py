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
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polymodal.records import Record

log = logging.getLogger("polymodal.serving")


class QueueFull(Exception):
    """The model's queue is at its bound; the client should retry later."""


class ShuttingDown(Exception):
    """The server is stopping and will not predict this request."""


@dataclass
class _Pending:
    records: list[Record]
    future: asyncio.Future[list[dict[str, Any]]] = field(repr=False)


def _settle(future: asyncio.Future[Any], result: Any = None,
            error: BaseException | None = None) -> None:
    """Give a request its result, unless its client is gone (timed out, disconnected)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DynamicBatcher:
    """One model's queue and the task that turns it into forward passes.

    A request larger than ``max_batch_size`` runs alone, in chunks of that size, each a
    separate job on the prediction thread: other models' batches run between its chunks,
    and a request whose client has gone stops at the next chunk.
    """

    def __init__(self, predict: Callable[[list[Record]], list[dict[str, Any]]], *,
                 max_batch_size: int = 32, max_delay_s: float = 0.005,
                 max_queue: int = 256,
                 on_batch: Callable[[int], None] | None = None,
                 executor: ThreadPoolExecutor | None = None, name: str = "model") -> None:
        self.predict = predict
        self.name = name
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
        self._stopping = False
        self.restarts = 0
        self._last_arrival = 0.0
        self._mean_gap_s = float("inf")

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being predicted)."""
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def alive(self) -> bool:
        """Whether the task that serves the queue is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def ensure_running(self) -> bool:
        """Restart a worker task that died; returns whether it had to."""
        if self.alive or self._stopping:
            return False
        if self._task is not None and not self._task.cancelled() and \
                self._task.exception() is not None:
            log.error("batcher of %s had stopped (%r); restarting it", self.name,
                      self._task.exception())
        self.restarts += 1
        self.start()
        return True

    async def submit(self, records: list[Record]) -> list[dict[str, Any]]:
        assert self._queue is not None, "start() the batcher first"
        if self._stopping:
            raise ShuttingDown
        self.ensure_running()
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
        while True:
            first = await self._queue.get()
            if first.future.done():
                continue
            batch = [first]
            try:
                batch = await self._collect(first)
                await self._serve(batch)
            except asyncio.CancelledError:
                for item in batch:
                    _settle(item.future, error=ShuttingDown())
                raise
            except Exception as exc:  # the batcher outlives any failure of a request
                log.exception("batcher of %s: a batch failed outside the model", self.name)
                for item in batch:
                    _settle(item.future, error=exc)
            finally:
                self._busy = False

    async def _call(self, records: list[Record]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        self._busy = True
        self.on_batch(len(records))
        return await loop.run_in_executor(self._executor, self.predict, records)

    async def _serve(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            await self._serve_one(batch[0])
            return
        records = [r for item in batch for r in item.records]
        try:
            results = await self._call(records)
        except Exception:  # one bad request must not fail the others batched with it
            for item in batch:
                await self._serve_one(item)
            return
        start = 0
        for item in batch:
            end = start + len(item.records)
            _settle(item.future, results[start:end])
            start = end

    async def _serve_one(self, item: _Pending) -> None:
        """One request, in chunks of at most ``max_batch_size`` records."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(item.records), self.max_batch_size):
            if item.future.done():  # its client is gone: drop the rest of its work
                return
            try:
                results.extend(await self._call(item.records[start:start +
                                                             self.max_batch_size]))
            except Exception as exc:
                _settle(item.future, error=exc)
                return
        _settle(item.future, results)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Stop taking requests, let queued ones finish within ``timeout_s``, then answer
        the rest as shutting down and stop. Work in flight on the prediction thread is not
        waited for (its result is dropped)."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (self._queue is not None and (not self._queue.empty() or self._busy)
               and self.alive and loop.time() < deadline):
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        while self._queue is not None and not self._queue.empty():
            _settle(self._queue.get_nowait().future, error=ShuttingDown())
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

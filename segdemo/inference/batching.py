"""One inference worker for every browser session: requests that arrive together share a forward pass.

Thirty students uploading within the same seconds would otherwise each run the
model on their own thread, one after the other behind a lock, every forward
competing for the same cores. Here each session's thread prepares its own input
(:func:`segdemo.inference.pipeline.preprocess`), hands the tensor to the worker
and waits; the worker takes the oldest request and every queued request for the
same model with the same input shape (up to :data:`MAX_BATCH`), runs one forward
pass on the stacked batch and hands each session its slice of the logits. The
session's thread then does its own postprocessing (upsampling, labels).

The queue is bounded (:data:`MAX_QUEUE`): a request beyond it is refused at once
with :class:`QueueFull` (the page says "busy, try again"), never queued without
limit. A waiting request knows how many requests are ahead of it
(:meth:`Ticket.ahead`), so a page can say so instead of freezing silently.
The same path serves CPU and GPU; on a GPU batching matters most.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable

import torch

MAX_BATCH = int(os.environ.get("SEGDEMO_MAX_BATCH", "8"))  # images per forward pass
MAX_QUEUE = int(os.environ.get("SEGDEMO_MAX_QUEUE", "128"))  # waiting requests, all sessions together
GATHER_S = float(os.environ.get("SEGDEMO_BATCH_GATHER_S", "0.005"))  # wait this long for company
WAIT_TIMEOUT_S = 300.0


def default_threads() -> int:
    """Torch CPU threads for a server: ``$SEGDEMO_TORCH_THREADS``, else half the cores (at least 1).

    The other half is left to the sessions' own work (decoding, upsampling, drawing,
    Streamlit itself). Measured on a shared 2-core machine: a MobileNetV2 LR-ASPP forward
    took ~1 s of CPU time with 2 threads (OpenMP threads spin while the cores are busy
    with other work) and ~0.11 s with 1 thread, also less wall time.
    """
    value = os.environ.get("SEGDEMO_TORCH_THREADS")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, (os.cpu_count() or 2) // 2)


class QueueFull(RuntimeError):
    """The inference queue holds :data:`MAX_QUEUE` requests already."""


@dataclass(eq=False)
class Ticket:
    """One request: an input batch of one for one model; done when ``logits`` is set."""

    key: Hashable  # requests with equal keys may share a forward pass
    x: torch.Tensor
    forward: Callable[[torch.Tensor], torch.Tensor]
    worker: "BatchingWorker"
    logits: torch.Tensor | None = None
    error: BaseException | None = None
    batch_size: int = 0  # how many requests shared the forward pass
    forward_s: float = 0.0
    queued_at: float = field(default_factory=time.perf_counter)
    done: threading.Event = field(default_factory=threading.Event)

    def ahead(self) -> int:
        """Requests the worker serves before this one (queued before it, or in the running batch)."""
        return self.worker.position(self)

    def wait(self, on_wait: Callable[[int], None] | None = None, every_s: float = 0.3) -> torch.Tensor:
        """The logits; ``on_wait(requests_ahead)`` is called while waiting (first after ``every_s``)."""
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while not self.done.wait(every_s):
            if on_wait is not None:
                on_wait(self.ahead())
            if time.monotonic() > deadline:
                raise TimeoutError("the inference worker did not answer in time")
        if self.error is not None:
            raise self.error
        assert self.logits is not None
        return self.logits


class BatchingWorker:
    """A daemon thread serving :class:`Ticket` requests in batches; see the module docstring."""

    def __init__(self, max_batch: int = MAX_BATCH, max_queue: int = MAX_QUEUE, gather_s: float = GATHER_S) -> None:
        self.max_batch = max(1, max_batch)
        self.max_queue = max(1, max_queue)
        self.gather_s = gather_s
        self._queue: deque[Ticket] = deque()
        self._running: list[Ticket] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.batches = 0  # forward passes run (tests and the benchmark read these)
        self.served = 0

    def submit(self, key: Hashable, x: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]) -> Ticket:
        """Queue one input (batch of one) for ``forward``; raises :class:`QueueFull` when full."""
        ticket = Ticket(key=key, x=x, forward=forward, worker=self)
        with self._cond:
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"{len(self._queue)} requests are waiting")
            self._queue.append(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="segdemo-inference", daemon=True)
                self._thread.start()
            self._cond.notify()
        return ticket

    def position(self, ticket: Ticket) -> int:
        """How many requests will be served before ``ticket``."""
        with self._cond:
            if ticket in self._running:
                return 0
            try:
                return self._queue.index(ticket) + len(self._running)
            except ValueError:
                return 0

    def queued(self) -> int:
        """Requests waiting now (not counting a running batch)."""
        with self._cond:
            return len(self._queue)

    def _take_batch(self) -> list[Ticket]:
        first = self._queue.popleft()
        batch = [first]
        for other in list(self._queue):
            if len(batch) >= self.max_batch:
                break
            if other.key == first.key and other.x.shape == first.x.shape:
                self._queue.remove(other)
                batch.append(other)
        return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
            if self.gather_s and len(self._queue) < self.max_batch:
                time.sleep(self.gather_s)  # requests of the same moment join this batch
            with self._cond:
                batch = self._take_batch()
                self._running = batch
            self._run(batch)
            with self._cond:
                self._running = []

    def _run(self, batch: list[Ticket]) -> None:
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                x = batch[0].x if len(batch) == 1 else torch.cat([t.x for t in batch])
                out = batch[0].forward(x)
                if out.device.type == "cuda":
                    torch.cuda.synchronize()
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting session, never lost
            for t in batch:
                t.error = exc
                t.done.set()
            return
        seconds = time.perf_counter() - t0
        self.batches += 1
        self.served += len(batch)
        for i, t in enumerate(batch):
            t.logits = out[i: i + 1]
            t.batch_size, t.forward_s = len(batch), seconds
            t.done.set()


_shared: BatchingWorker | None = None
_shared_lock = threading.Lock()


def apply_server_threads() -> int:
    """Set torch's CPU threads to :func:`default_threads` in the calling thread; returns the count.

    OpenMP keeps the thread count per thread and Streamlit runs every rerun in a new
    one, so each script run (``ui.sidebar.setup_page``) and the worker call this: the
    device line then says the same before and after the first forward pass.
    """
    n = default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def shared_worker() -> BatchingWorker:
    """The process-wide worker (one for every session of a Streamlit server)."""
    global _shared
    apply_server_threads()  # process-wide: every page's forward passes use these threads
    with _shared_lock:
        if _shared is None:
            _shared = BatchingWorker()
        return _shared


def batchable(model: torch.nn.Module) -> bool:
    """Whether inputs of ``model`` may be stacked (overlap-tiled networks are run one image at a time)."""
    net = getattr(model, "net", model)
    return getattr(net, "tile_output", None) is None


class WorkerForward:
    """A ``run_forward`` for :func:`segdemo.inference.pipeline.predict` that goes through ``worker``.

    ``timings`` afterwards holds the seconds spent waiting in the queue ("queue"),
    the batch's forward time ("forward") and the batch size ("batch").
    """

    def __init__(self, worker: BatchingWorker, model: torch.nn.Module, key: Hashable,
                 on_wait: Callable[[int], None] | None = None) -> None:
        from segdemo.inference.pipeline import locked_forward

        self.worker, self.model, self.on_wait = worker, model, on_wait
        # An overlap-tiled network never shares a pass: a key no other request has.
        self.key = key if batchable(model) else (key, object())
        self.forward = locked_forward(model)
        self.timings: dict[str, float] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        ticket = self.worker.submit(self.key, x, self.forward)
        logits = ticket.wait(self.on_wait)
        total = time.perf_counter() - t0
        self.timings = {"queue": max(0.0, total - ticket.forward_s), "forward": ticket.forward_s,
                        "batch": float(ticket.batch_size)}
        return logits

"""Decode a whole series in the background, on every core, nearest slices first.

Measured on the 2-core reference machine (bench/bench_load.py "decoder_modes", and
docs/benchmarks.md): when the second core is free, compressed slices (JPEG lossless,
JPEG-LS, JPEG 2000) decode about twice as fast in two worker processes as in one thread,
and two threads are no faster than one (the decoders hold the GIL); worker processes also
run GDCM, the fastest JPEG decoder here, which is kept out of the program itself because
it aborts the process on some corrupt files. Uncompressed slices are read straight from their byte
offset in well under a millisecond, where a process round trip would cost more than
the work, so they are decoded by threads. The worker processes are shared by every
series and kept warm (``workers.py``; call ``warm_up()`` at program start).

The slice at ``start_index`` is decoded first: in this thread, unless the series goes to a
pool that is already running (GDCM there decodes a JPEG-lossless 512² slice in 5 ms, the
decoders allowed in this process take 20 ms); while the pool is still starting this thread
keeps decoding, so nothing waits for it. The rest follow outwards
(k+1, k-1, k+2, ...). A crashing decoder process takes down only the slice that crashed
it (suspects are retried one at a time): that slice is marked as failed, so the GUI never
retries it in its own process, and a new pool carries on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

import numpy as np

from ich_viewer.dicom import workers as worker_pool
from ich_viewer.dicom.grouping import SeriesPixels
from ich_viewer.dicom.model import PixelDecodeError, Series
from ich_viewer.dicom.pixels import decode_job_isolated
from ich_viewer.dicom.workers import default_workers, process_context, shutdown_workers, warm_up

__all__ = ["BackgroundDecoder", "outward_order", "process_context", "shutdown_workers", "warm_up"]

log = logging.getLogger(__name__)

MODES = ("auto", "processes", "threads")
MAX_POOL_RESTARTS = 8


def outward_order(start: int, n: int) -> list[int]:
    """start, start+1, start-1, start+2, ... clipped to 0..n-1."""
    if n <= 0:
        return []
    start = min(max(start, 0), n - 1)
    order = [start]
    for step in range(1, n):
        for index in (start + step, start - step):
            if 0 <= index < n:
                order.append(index)
    return order


class BackgroundDecoder:
    """Fills ``series`` with decoded slices; ``on_slice(i)`` is called from a worker thread.

    ``on_slice`` is also called for a slice that failed (``series.decode_error(i)`` says
    why). ``mode`` is "auto" (processes for compressed series, threads otherwise),
    "processes" or "threads".
    """

    def __init__(
        self,
        series: Series,
        on_slice: Callable[[int], None] | None = None,
        workers: int | None = None,
        start_index: int = 0,
        mode: str = "auto",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.series = series
        self.on_slice = on_slice
        self.workers = workers or default_workers()
        self.start_index = start_index
        self.requested_mode = mode
        self.mode_used = ""
        self.decoded = 0
        self.failed = 0
        self.elapsed_s = 0.0
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()
        self._alone: set[int] = set()
        """Slices sent to the pool one at a time: crash suspects (a crash alone marks the slice
        failed), and the first slice when the pool is already warm (so it comes back first)."""

    # -- public control -----------------------------------------------------------------
    def start(self) -> "BackgroundDecoder":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ich-decode", daemon=True)
            self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True when decoding has finished (or was cancelled and has stopped)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def done(self) -> bool:
        return self._finished.is_set()

    # -- the work -----------------------------------------------------------------------
    def _run(self) -> None:
        started = time.perf_counter()
        try:
            pending = deque(i for i in outward_order(self.start_index, len(self.series)) if not self._known(i))
            mode = self._resolve_mode(len(pending) - 1)
            if mode == "processes" and worker_pool.ready_pool() and pending:
                self._alone.add(pending[0])  # the pool decodes it first, alone, so it comes back first
            elif pending and not self._cancelled.is_set():
                self._decode_here(pending.popleft())
            if pending and not self._cancelled.is_set():
                if mode == "processes":
                    self._run_processes(pending)
                else:
                    self._run_threads(pending)
        except Exception:  # never let the thread die silently with slices left undone
            log.exception("background decoding of %s stopped", self.series.series_uid)
        finally:
            self.elapsed_s = time.perf_counter() - started
            self._finished.set()

    def _known(self, index: int) -> bool:
        return self.series.is_decoded(index) or self.series.decode_error(index) is not None

    def _resolve_mode(self, remaining: int) -> str:
        source = self.series.pixel_source
        if self.requested_mode == "threads" or not isinstance(source, SeriesPixels):
            mode = "threads"
        elif self.requested_mode == "processes":
            mode = "processes"
        else:
            mode = "processes" if source.compressed and self.workers > 1 and remaining > 2 else "threads"
        self.mode_used = mode
        return mode

    def _decode_here(self, index: int) -> None:
        try:
            image = self.series.pixel_source(self.series.slices[index])
        except Exception as exc:
            self._record_error(index, exc)
        else:
            self._record_image(index, image)

    def _record_image(self, index: int, image: np.ndarray) -> None:
        self.series.store_hu(index, image)
        self.decoded += 1
        self._notify(index)

    def _record_error(self, index: int, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, PixelDecodeError) else (
            f"{self.series.slices[index].path}: {type(exc).__name__}: {exc}"
        )
        self.series.store_error(index, message)
        self.failed += 1
        self._notify(index)

    def _notify(self, index: int) -> None:
        if self.on_slice is None:
            return
        try:
            self.on_slice(index)
        except Exception:  # a broken listener must not stop decoding
            log.exception("on_slice(%d) failed", index)

    def _run_threads(self, pending: deque[int]) -> None:
        source = self.series.pixel_source
        decode = source.decode_here if isinstance(source, SeriesPixels) else source
        with ThreadPoolExecutor(self.workers, thread_name_prefix="ich-decode") as pool:
            self._drain(pool, pending, lambda i: pool.submit(decode, self.series.slices[i]))

    def _run_processes(self, pending: deque[int]) -> None:
        source = self.series.pixel_source
        assert isinstance(source, SeriesPixels)
        restarts = 0
        while pending and not self._cancelled.is_set():
            pool = self._pool_while_decoding(pending)
            if pool is None:
                self.mode_used = "threads" if pending else "here (the pool was still starting)"
                self._run_threads(pending)
                return
            try:
                self._drain(pool, pending, lambda i: pool.submit(decode_job_isolated, source.job(self.series.slices[i])))
                return
            except BrokenProcessPool:
                worker_pool.discard_pool(pool)
                restarts += 1
                if restarts > MAX_POOL_RESTARTS:
                    while pending:
                        index = pending.popleft()
                        path = self.series.slices[index].path
                        self._record_error(index, PixelDecodeError(f"{path}: decoder processes kept crashing"))
                    return

    def _pool_while_decoding(self, pending: deque[int]) -> ProcessPoolExecutor | None:
        """The shared worker pool; while it starts, keep decoding here so no time is lost.

        None when processes cannot be used (then threads take over).
        """
        ready = worker_pool.start_pool(self.workers)
        while not ready.is_set() and pending and not self._cancelled.is_set():
            index = pending.popleft()
            if not self._known(index):
                self._decode_here(index)
        if not pending or self._cancelled.is_set():
            return worker_pool.ready_pool()
        ready.wait()
        return worker_pool.ready_pool()

    def _drain(self, pool: Executor, pending: deque[int], submit: Callable[[int], Future]) -> None:
        """Keep a few slices in flight, in order, until done or cancelled.

        After a worker crash the slices that were in flight are suspects: each is retried
        alone, so only the one that really crashes the decoder is marked as failed.
        """
        window = 2 * self.workers
        in_flight: dict[Future, int] = {}
        try:
            while (pending or in_flight) and not self._cancelled.is_set():
                while pending and len(in_flight) < window:
                    if pending[0] in self._alone and in_flight:
                        break  # it runs alone
                    index = pending.popleft()
                    if not self._known(index):
                        in_flight[submit(index)] = index
                    if index in self._alone:
                        break
                if not in_flight:
                    continue
                finished, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = in_flight.pop(future)
                    try:
                        self._record_image(index, future.result())
                    except BrokenProcessPool:
                        self._pool_crashed(index, in_flight, pending)
                        raise
                    except Exception as exc:
                        self._record_error(index, exc)
                    self._alone.discard(index)
        finally:
            for future in in_flight:
                future.cancel()

    def _pool_crashed(self, index: int, in_flight: dict[Future, int], pending: deque[int]) -> None:
        crashed = [index, *in_flight.values()]
        in_flight.clear()
        if len(crashed) == 1 and index in self._alone:
            self._alone.discard(index)
            self._record_error(index, PixelDecodeError(
                f"{self.series.slices[index].path}: the decoder crashed on this slice "
                f"({self.series.slices[index].transfer_syntax_uid})"
            ))
            return
        self._alone.update(crashed)
        pending.extendleft(reversed(crashed))

"""One pool of decoder processes for the whole program, started once and kept warm.

Starting worker processes costs 0.1-0.5 s on the reference machine: as much as decoding
a whole 40-slice series. So the pool outlives a series; ``warm_up()`` at program start
makes even the first series find it ready. Workers come from a fork server (a clean
interpreter with the decoders preloaded), never forked from the running GUI with its Qt
and torch threads. The pool's helper thread is a daemon; Python shuts the pool down at
exit, or call ``shutdown_workers()``.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

_PRELOAD = [
    "numpy",
    "ich_viewer.dicom.pixels",
    "ich_viewer.dicom.headers",
    "ich_viewer.dicom.fastheader",
    "pydicom.filereader",
    "pydicom.pixels.decoders.gdcm",
    "pydicom.pixels.decoders.pylibjpeg",
    "gdcm",
    "libjpeg",
    "openjpeg",
    "rle",
    "jpeg_ls",
]
"""Imported once by the fork server, so each worker starts with its decoders loaded
(a missing optional decoder is skipped by the fork server)."""

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_ready = threading.Event()
_booting = False


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def process_context() -> multiprocessing.context.BaseContext:
    """Fork server where available (safe beside Qt and torch threads), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _ping() -> int:
    return os.getpid()


def ready_pool() -> ProcessPoolExecutor | None:
    """The pool if its workers are running, else None (see ``start_pool``)."""
    return _pool if _ready.is_set() else None


def start_pool(workers: int | None = None) -> threading.Event:
    """Start the pool in the background (once); the event is set when it is ready or failed."""
    global _booting
    with _lock:
        if _ready.is_set() or _booting:
            return _ready
        _booting = True
    threading.Thread(target=_boot, args=(workers or default_workers(),), name="ich-decode-pool", daemon=True).start()
    return _ready


def _boot(workers: int) -> None:
    global _pool, _booting
    pool = None
    try:
        pool = ProcessPoolExecutor(workers, mp_context=process_context())
        for future in [pool.submit(_ping) for _ in range(workers)]:
            future.result(timeout=120)
    except BaseException as exc:  # no process support (sandbox, unguarded __main__ module)
        log.warning("decoder processes unavailable (%s: %s); decoding with threads", type(exc).__name__, exc)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        pool = None
    with _lock:
        _pool = pool
        _booting = False
        _ready.set()


def discard_pool(pool: ProcessPoolExecutor) -> None:
    """Drop a broken pool; the next ``start_pool`` makes a new one."""
    global _pool
    with _lock:
        if _pool is not pool:
            return
        _pool = None
        _ready.clear()
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown_workers(wait: bool = True) -> None:
    """Stop the worker processes (they are started again when needed)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
        _ready.clear()
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


def warm_up() -> None:
    """Start the decoder processes now, in the background; call once at program start."""
    start_pool()

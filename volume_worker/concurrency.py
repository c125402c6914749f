"""The one place that knows whether the worker runs on eventlet or native threads.

The entry point calls ``setup(mode)`` before importing anything that touches
sockets or threads. Everything else asks this module to spawn, sleep, or run a
blocking driver call, and stays the same in both modes.
"""

import contextlib
import threading
import time

EVENTLET = 'eventlet'
THREADING = 'threading'

_mode = None
_tpool = None


def setup(mode, driver_threads=64):
    """Choose the concurrency model for this process; call once, first."""
    global _mode, _tpool
    import warnings
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    if _mode is not None:
        if mode != _mode:
            raise RuntimeError('concurrency already set up as %s' % _mode)
        return
    if mode == EVENTLET:
        import os
        os.environ.setdefault('EVENTLET_THREADPOOL_SIZE', str(driver_threads))
        import eventlet
        eventlet.monkey_patch()
        from eventlet import tpool
        _tpool = tpool
        _native_logging_locks()
        _green_request_contexts()
        from drivers import event_loop
        event_loop.start()  # os-brick from driver calls (native threads)
    elif mode == THREADING:
        from oslo_service import backend
        try:
            backend.init_backend(backend.BackendType.THREADING)
        except Exception:  # already chosen by an earlier import: harmless here
            pass
    else:
        raise ValueError('unknown executor %r' % mode)
    _mode = mode


def _native_logging_locks():
    """Give logging native locks: driver calls log from native threads.

    Monkey-patched, ``threading`` locks are green, and a green lock shared by
    two native threads breaks ("Cannot switch to a different thread") and
    leaves the waiting thread hung. A handler holds its lock only while it
    writes a record, so a native lock costs the event loop nothing.
    """
    import logging
    from eventlet import patcher
    native = patcher.original('threading')

    def create_lock(handler):
        handler.lock = native.RLock()

    logging.Handler.createLock = create_lock
    logging._lock = native.RLock()


def _green_request_contexts():
    """Give each green thread a request context of its own.

    oslo.context keeps the current context (what oslo.log puts in every
    line: request id, resource id) in a ``threading.local`` made when it
    was imported, which for the worker is before eventlet patched
    anything: a native thread-local, shared by every green thread, so
    concurrent operations would log each other's ids.
    """
    import threading as green_threading  # patched by now
    from oslo_context import context as oslo_context
    oslo_context._request_store = green_threading.local()


def _with_context(fn):
    """``fn`` run under the caller's request context, in another thread."""
    from volume_worker import log_context
    context = log_context.current()
    if context is None:
        return fn

    def run(*args, **kwargs):
        log_context.set_current(context)
        try:
            return fn(*args, **kwargs)
        finally:
            log_context.set_current(None)
    return run


def mode():
    return _mode or THREADING


def run_blocking(fn, *args, **kwargs):
    """Run a call that may block natively (a driver call) off the event loop.

    Under eventlet it goes to a native thread so green threads (heartbeat,
    reports, other operations) keep running; under threading the caller is
    already a native thread.
    """
    if _tpool is not None:
        return _tpool.execute(_with_context(fn), *args, **kwargs)
    return fn(*args, **kwargs)


def run_isolated(fn, *args, **kwargs):
    """Run ``fn`` to its end in a green thread of its own (eventlet only).

    oslo.messaging's eventlet executor serves each message on a bare
    greenlet, for which eventlet cannot cache ``threading.current_thread()``:
    every lock TaskFlow takes then walks all threads, a third of an
    operation's CPU. A proper GreenThread gets the cache.
    """
    if _mode == EVENTLET:
        import eventlet
        ok, value = eventlet.spawn(_captured(_with_context(fn)), *args,
                                   **kwargs).wait()
        if not ok:
            raise value
        return value
    return fn(*args, **kwargs)


def _captured(fn):
    """``fn`` returning (True, result) or (False, its exception).

    A green thread that ends with an exception has eventlet's hub print
    its traceback on stderr, outside the log (and its format); the caller
    re-raises it instead, traceback included.
    """
    def run(*args, **kwargs):
        try:
            return True, fn(*args, **kwargs)
        except Exception as exc:
            return False, exc
    return run


def submit_blocking(fn, *args, **kwargs):
    """Start a call that may block natively; returns a ``Pending`` at once.

    The caller waits as long as it wants (``Pending.wait(timeout)``) and
    may give up: the call goes on in its native thread until it returns,
    holding that thread only. For calls that may hang for minutes (a
    backend's stats), so that no green thread or loop waits behind them.
    """
    pending = Pending()

    def run():
        try:
            pending._result = run_blocking(fn, *args, **kwargs)
        except BaseException as exc:  # handed to result()
            pending._error = exc
        finally:
            pending._done.set()
    if _mode == EVENTLET:
        import eventlet
        eventlet.spawn(run)  # waits, green, on a native thread of tpool
    else:
        threading.Thread(target=run, daemon=True).start()
    return pending


class Pending:
    """The future of a ``submit_blocking`` call."""

    def __init__(self):
        self._done = threading.Event()  # green under eventlet: set there
        self._result = None
        self._error = None
        self.started = time.monotonic()

    def done(self):
        return self._done.is_set()

    def wait(self, timeout=None):
        """True once the call has returned (or raised), False on timeout."""
        return self._done.wait(timeout)

    def result(self):
        """The call's return value; raises what it raised."""
        if self._error is not None:
            raise self._error
        return self._result


@contextlib.contextmanager
def task_pool(workers):
    """An executor running up to ``workers`` tasks of one flow at once.

    Green threads under eventlet (their driver calls still go to the
    native pool through ``run_blocking``), native threads otherwise. The
    pool belongs to one run: it is shut down without waiting for its idle
    threads, which end on their own (futurist's idle wait would add a
    second to every run).
    """
    import futurist
    if _mode == EVENTLET:
        executor = futurist.GreenThreadPoolExecutor(max_workers=workers)
    else:
        executor = futurist.ThreadPoolExecutor(max_workers=workers)
    try:
        yield executor
    finally:
        executor.shutdown(wait=False)


def event():
    """An event that the threads (green or native) of this mode can wait on."""
    return threading.Event()


def spawn(fn, *args, **kwargs):
    """Start ``fn`` in the background; returns an object with ``wait()``."""
    if _mode == EVENTLET:
        import eventlet
        return eventlet.spawn(fn, *args, **kwargs)
    return _Thread(fn, args, kwargs)


def sleep(seconds):
    time.sleep(seconds)  # green under eventlet: time is monkey-patched


def yield_now():
    """Let a thread that was just woken run before this one goes on."""
    time.sleep(0)  # a green switch under eventlet; releases the GIL else


class _Thread:
    def __init__(self, fn, args, kwargs):
        self._result = None
        self._error = None

        def run():
            try:
                self._result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to wait()
                self._error = exc
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def wait(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def native_threading():
    """The ``threading`` module of real OS threads, monkey-patched or not.

    For work that must run in parallel inside a native thread (a driver
    call): green threads would not run there.
    """
    if _mode == EVENTLET:
        from eventlet import patcher
        return patcher.original('threading')
    return threading


def native_queue():
    """The ``queue`` module working with ``native_threading()``."""
    if _mode == EVENTLET:
        from eventlet import patcher
        return patcher.original('queue')
    import queue
    return queue

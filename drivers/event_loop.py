"""Calls that must run in eventlet's main hub, made from native threads.

Driver calls run in native threads, also under eventlet. Some libraries,
once the process is monkey-patched, only work in green threads: os-brick's
privileged commands run in-process start a ``threading.Timer`` (a green
thread) per command, and its privsep client waits on green conditions. From
a native thread those fail with "Cannot switch to a different thread" or
leave the thread waiting forever. ``call(fn, ...)`` runs ``fn`` in a green
thread of the hub that ``start()`` was called in (the worker's main
thread, as Cinder runs os-brick) and waits for it with a native event;
without ``start()`` (threading mode, tools, tests) or from the hub's own
thread it simply calls ``fn``.
"""

import collections
import os

_loop = None


class _Loop:
    def __init__(self):
        import eventlet
        from eventlet import patcher
        self._eventlet = eventlet
        self._native = patcher.original('threading')
        self._thread_ident = patcher.original('_thread').get_ident
        self.owner = self._thread_ident()
        self._tasks = collections.deque()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        eventlet.spawn_n(self._serve)

    def _serve(self):
        from eventlet import hubs
        while True:
            hubs.trampoline(self._rfd, read=True)
            try:
                os.read(self._rfd, 4096)
            except BlockingIOError:
                pass
            while self._tasks:
                self._eventlet.spawn_n(self._run, self._tasks.popleft())

    @staticmethod
    def _run(task):
        fn, args, kwargs, done, outcome = task
        try:
            outcome.append((True, fn(*args, **kwargs)))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))
        done.set()

    def call(self, fn, args, kwargs):
        if self._thread_ident() == self.owner:
            return fn(*args, **kwargs)
        done, outcome = self._native.Event(), []
        self._tasks.append((fn, args, kwargs, done, outcome))
        os.write(self._wfd, b'.')
        done.wait()
        ok, value = outcome[0]
        if ok:
            return value
        raise value


def start():
    """Serve ``call`` from the current thread's hub (once, at start-up,
    in the main thread of a monkey-patched process)."""
    global _loop
    if _loop is None:
        _loop = _Loop()


def call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, run in the hub's thread when there is one."""
    if _loop is None:
        return fn(*args, **kwargs)
    return _loop.call(fn, args, kwargs)

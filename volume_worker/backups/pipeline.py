"""Chunk work in parallel: a few native threads, reused buffers, the copy throttle.

A backup or restore runs inside a driver call (a native thread, also under
eventlet): its helpers must be real threads too (``concurrency``).
"""

from volume_worker import concurrency
from volume_worker.backups import chunkio


class throttled:
    """Count one running copy on the throttle while the block lasts."""

    def __init__(self, throttle):
        self._cm = throttle.copy() if throttle is not None else None

    def __enter__(self):
        if self._cm is not None:
            self._cm.__enter__()

    def __exit__(self, *exc):
        if self._cm is not None:
            return self._cm.__exit__(*exc)
        return False


class Buffers:
    """Chunk buffers used over and over: a fresh 32 MiB buffer per chunk
    costs its page faults every time (half the time of a read). They are
    page-aligned, for direct I/O (``chunkio``)."""

    def __init__(self, count, size):
        self._free = concurrency.native_queue().Queue()
        self._size = size
        self._made = 0
        self._count = count

    def take(self):
        """A free buffer; waits while ``count`` are in use."""
        if self._free.empty() and self._made < self._count:
            self._made += 1
            return chunkio.aligned_buffer(self._size)
        return self._free.get()

    def give(self, buffer):
        self._free.put(buffer)


class Workers:
    """A few native threads running jobs; results come back keyed, as they end.

    At most twice as many chunks as threads are in flight, which bounds the
    memory a backup holds (chunks of 32 MiB).
    """

    def __init__(self, count):
        threading = concurrency.native_threading()
        self._queue_module = concurrency.native_queue()
        self._jobs = self._queue_module.Queue(maxsize=count)
        self._done = self._queue_module.Queue()
        self.limit = 2 * count
        self._pending = 0
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            key, fn, args = job
            try:
                self._done.put((key, fn(*args), None))
            except BaseException as exc:  # handed to the submitter
                self._done.put((key, None, exc))

    def submit(self, key, fn, *args):
        self._jobs.put((key, fn, args))
        self._pending += 1

    def results(self, wait_all=False):
        """Finished jobs' (key, result); waits while too many are in flight."""
        out = []
        while self._pending:
            must_wait = wait_all or self._pending >= self.limit
            try:
                key, value, error = self._done.get(block=must_wait)
            except self._queue_module.Empty:
                break
            self._pending -= 1
            if error is not None:
                raise error
            out.append((key, value))
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # Let running jobs finish (their results are dropped on failure),
        # so no thread writes after the operation moved on.
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        return False

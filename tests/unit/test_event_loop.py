"""os-brick from native threads under eventlet: through drivers.event_loop, no 'Cannot switch to a different thread', no hung thread.

Each case runs in a process of its own (monkey-patching is for good): four
native threads (driver calls) and a green thread use os-brick's in-process
privileged probe at once; without the event loop a native thread hangs in
a green semaphore, so the child is given a bound and must exit by itself.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

CHILD = r'''
import sys, tempfile
sys.path.insert(0, %(root)r)
from volume_worker import concurrency
concurrency.setup(concurrency.EVENTLET)
import eventlet
from eventlet import patcher
from oslo_config import cfg
from drivers import datapath, event_loop
if not %(with_loop)r:
    event_loop._loop = None
native = patcher.original('threading')
datapath.init_os_brick(cfg.CONF, lock_path=tempfile.mkdtemp(),
                       in_process_privsep=True)
errors, done = [], []

def in_native_thread():
    try:
        for _ in range(5):
            assert 'host' in datapath.local_connector()
        # The LOCAL connector's attach and detach go the same way.
        with datapath.Attachment({'driver_volume_type': 'local',
                                  'data': {'device_path': '/dev/null'}}) as p:
            assert p == '/dev/null'
    except BaseException as exc:
        errors.append(repr(exc))
    done.append(1)

threads = [native.Thread(target=in_native_thread) for _ in range(4)]
green = eventlet.spawn(lambda: [datapath.local_connector()
                                for _ in range(10)])
for t in threads:
    t.start()
while len(done) < len(threads):
    eventlet.sleep(0.01)
green.wait()
print('errors: %%d %%s' %% (len(errors), errors[:2]))
sys.exit(1 if errors else 0)
'''

# Enough for 30 probes on a loaded machine; a hung child never ends.
BOUND = 120


def _run(with_loop):
    script = CHILD % {'root': ROOT, 'with_loop': with_loop}
    try:
        return subprocess.run([sys.executable, '-c', script],
                              capture_output=True, text=True,
                              timeout=BOUND)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="os-brick's in-process privileged calls need root")
def test_os_brick_from_native_threads_runs_in_the_hub():
    done = _run(with_loop=True)
    assert done is not None, 'a native thread hung in os-brick'
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert 'errors: 0' in done.stdout


def test_calls_from_native_threads_run_in_the_hub_and_return_or_raise():
    script = r'''
import sys
sys.path.insert(0, %(root)r)
from volume_worker import concurrency
concurrency.setup(concurrency.EVENTLET)
import eventlet
from eventlet import patcher
from drivers import event_loop
native = patcher.original('threading')
ident = patcher.original('_thread').get_ident
main = ident()
seen = []

def green_work(n):
    # A green timer and sleep: only possible in the hub's thread.
    timer = __import__('threading').Timer(0.01, lambda: None)
    timer.start()
    timer.join()
    eventlet.sleep(0)
    if n < 0:
        raise ValueError('bad %%d' %% n)
    return (ident(), n * 2)

def worker(n):
    try:
        seen.append(event_loop.call(green_work, n))
    except ValueError as exc:
        seen.append(str(exc))

threads = [native.Thread(target=worker, args=(n,)) for n in (1, 2, -3)]
for t in threads:
    t.start()
while len(seen) < 3:
    eventlet.sleep(0.01)
assert sorted(map(str, seen)) == sorted(map(str, [
    (main, 2), (main, 4), 'bad -3'])), seen
assert event_loop.call(lambda: ident()) == main  # the hub calls directly
print('ok')
''' % {'root': ROOT}
    try:
        done = subprocess.run([sys.executable, '-c', script],
                              capture_output=True, text=True, timeout=BOUND)
    except subprocess.TimeoutExpired:
        pytest.fail('a call from a native thread never returned')
    assert done.returncode == 0 and 'ok' in done.stdout, done.stderr[-2000:]

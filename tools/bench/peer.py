"""Section 10 (``--peer cinder``): a real cinder-volume beside volume-worker.

Same machine, same RabbitMQ, same run: Cinder 29.0.0 is installed into a
venv of its own (under the bench's scratch directory unless ``--peer-venv``
names one to keep), and a real ``cinder-volume`` serves one backend with
Cinder's ``FakeLoggingVolumeDriver`` on a fresh SQLite database. Both sides
get the same load, in alternating rounds: a burst of ``count`` create casts
(then as many deletes), each waited for by its end notification, and
``lone`` creates sent one at a time. Cinder's side is driven from Cinder's
venv by ``peer_cinder.py`` through Cinder's own ``VolumeAPI``; ours by the
control section's driver through ours. Worker CPU comes from ``/proc`` of
the process serving the backend (for cinder-volume, the child its
oslo.service parent forks). The table gets each side's figures, the ratios
ours / cinder-volume, and both sides' ratios to the raw oslo.messaging
limit measured at the start of the same run.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import common
from common import cpu_seconds, percentile

SECTION = '10 peer: cinder-volume'
CINDER_VERSION = '29.0.0'
# Cinder's fake drivers live in its test tree, which imports these.
CINDER_PACKAGES = ('cinder==%s' % CINDER_VERSION, 'fixtures', 'oslotest',
                   'testtools', 'ddt')
HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER_SCRIPT = os.path.join(HERE, 'peer_cinder.py')
READY = 'Driver post RPC initialization completed successfully'


def _log(msg):
    print('bench peer: %s' % msg, file=sys.stderr, flush=True)


def ensure_cinder_venv(path, log_path):
    """A venv at ``path`` with Cinder installed; returns its python."""
    python = os.path.join(path, 'bin', 'python')
    if os.path.exists(os.path.join(path, 'bin', 'cinder-volume')):
        out = subprocess.run([python, '-m', 'pip', 'show', 'cinder'],
                             capture_output=True, text=True)
        if 'Version: %s' % CINDER_VERSION in out.stdout:
            return python
    started = time.monotonic()
    _log('installing %s into %s (pip, about half a minute)'
         % (' '.join(CINDER_PACKAGES), path))
    with open(log_path, 'ab') as log:
        # The venv module makes the venv on the base interpreter even when
        # run from the project's venv: nothing of ours is visible there.
        subprocess.run([sys.executable, '-m', 'venv', path], check=True,
                       stdout=log, stderr=subprocess.STDOUT)
        subprocess.run([python, '-m', 'pip', 'install', '-q']
                       + list(CINDER_PACKAGES), check=True, stdout=log,
                       stderr=subprocess.STDOUT, timeout=900)
    _log('installed in %.0f s' % (time.monotonic() - started))
    return python


class CinderVolume:
    """A real cinder-volume on its own config, database and queues."""

    def __init__(self, venv, state_dir, transport_url):
        self.venv = venv
        self.dir = os.path.join(state_dir, 'cinder')
        os.makedirs(self.dir, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        self.host = 'bench-peer-%s' % tag
        self.backend = self.host + '@fake'
        self.notification_topic = 'cinder-bench-%s' % tag
        self.transport_url = transport_url
        self.config = os.path.join(self.dir, 'cinder.conf')
        self.log_path = os.path.join(self.dir, 'cinder-volume.log')
        self.proc = None
        self._out = None

    def bin(self, name):
        return os.path.join(self.venv, 'bin', name)

    def write_config(self):
        d = self.dir
        lines = [
            '[DEFAULT]',
            'host = %s' % self.host,
            'enabled_backends = fake',
            'transport_url = %s' % self.transport_url,
            'auth_strategy = noauth',
            'state_path = %s' % d,
            'log_file = %s' % self.log_path,
            'graceful_shutdown_timeout = 5',
            '',
            '[database]',
            'connection = sqlite:///%s' % os.path.join(d, 'cinder.sqlite'),
            '',
            '[oslo_concurrency]',
            'lock_path = %s' % os.path.join(d, 'locks'),
            '',
            '[coordination]',
            'backend_url = file://%s' % os.path.join(d, 'coordination'),
            '',
            # Notifications on, as ours are; on a topic of this run's own
            # (the queue "notifications.info" may exist with other
            # arguments, and should not mix with anyone else's).
            '[oslo_messaging_notifications]',
            'driver = messagingv2',
            'topics = %s' % self.notification_topic,
            '',
            '[fake]',
            'volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver',
            'volume_backend_name = fake',
        ]
        with open(self.config, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def start(self, timeout=120):
        self.write_config()
        env = dict(os.environ, PYTHONWARNINGS='ignore')
        env.pop('PYTHONPATH', None)
        with open(os.path.join(self.dir, 'db-sync.log'), 'wb') as log:
            subprocess.run([self.bin('cinder-manage'), '--config-file',
                            self.config, 'db', 'sync'], check=True,
                           stdout=log, stderr=subprocess.STDOUT, env=env,
                           timeout=300)
        self._out = open(os.path.join(self.dir, 'cinder-volume.out'), 'wb')
        self.proc = subprocess.Popen(
            [self.bin('cinder-volume'), '--config-file', self.config],
            stdout=self._out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while not self._logged(READY):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('cinder-volume did not start: %s'
                                   % self._tail())
            time.sleep(0.2)
        return self

    def _logged(self, text):
        try:
            with open(self.log_path, errors='replace') as f:
                return text in f.read()
        except FileNotFoundError:
            return False

    def _tail(self, n=3000):
        for path in (self.log_path,
                     os.path.join(self.dir, 'cinder-volume.out')):
            try:
                with open(path, errors='replace') as f:
                    text = f.read()[-n:]
                if text.strip():
                    return text
            except FileNotFoundError:
                pass
        return '(no output)'

    @property
    def worker_pid(self):
        """The child the oslo.service parent forked: it serves the backend."""
        children = _children(self.proc.pid)
        if len(children) != 1:
            raise RuntimeError('cinder-volume %d has children %s, expected '
                               'one' % (self.proc.pid, children))
        return children[0]

    def errors(self):
        """(ERROR records logged, how many of them say the DB was locked)."""
        records = locked = 0
        try:
            with open(self.log_path, errors='replace') as f:
                for line in f:
                    # A record's first line names its request: "ERROR x [req".
                    if re.search(r' ERROR \S+ \[', line):
                        records += 1
                        locked += 'database is locked' in line
        except FileNotFoundError:
            pass
        return records, locked

    def drive(self, count, lone, warm):
        """One round through peer_cinder.py; its JSON result."""
        env = dict(os.environ, PYTHONWARNINGS='ignore')
        env.pop('PYTHONPATH', None)
        proc = subprocess.run(
            [self.bin('python'), DRIVER_SCRIPT, '--config-file', self.config,
             '--host', self.backend, '--pid', str(self.worker_pid),
             '--count', str(count), '--lone', str(lone), '--warm', str(warm)],
            capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError('peer_cinder.py failed (%d): %s' % (
                proc.returncode, proc.stderr[-3000:]))
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def stop(self):
        if self.proc is None:
            return
        pids = []
        try:
            pids = _children(self.proc.pid)
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in pids:  # the child, if it outlived its parent
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self._out is not None:
            self._out.close()
        self.proc = None

    def queues(self):
        """The queues this cinder-volume and its driver declared."""
        names = ['cinder-volume.%s' % self.host,
                 'cinder-volume.%s' % self.backend]
        names += ['%s.%s' % (self.notification_topic, priority) for priority
                  in ('audit', 'debug', 'info', 'warn', 'error', 'critical',
                      'sample')]
        return names


def _children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        pass
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def delete_queues(transport_url, names):
    import kombu
    url = transport_url.replace('rabbit://', 'amqp://', 1)
    with kombu.Connection(url, connect_timeout=5) as conn:
        for name in names:
            channel = conn.channel()
            try:
                channel.queue_delete(name)
            except conn.channel_errors:
                pass
            finally:
                try:
                    channel.close()
                except Exception:  # closed by the broker's refusal
                    pass


def drive_ours(driver, pid, count, lone, warm):
    """The same load on one of our workers; the same figures."""
    ids = lambda n: [str(uuid.uuid4()) for _ in range(n)]  # noqa: E731
    if warm:
        w = ids(warm)
        driver.burst('create', w)
        driver.burst('delete', w)
    volumes = ids(count)
    cpu0 = cpu_seconds(pid)
    create_rate, create_lat, _ = driver.burst('create', volumes)
    cpu1 = cpu_seconds(pid)
    delete_rate, delete_lat, _ = driver.burst('delete', volumes)
    cpu2 = cpu_seconds(pid)
    singles = ids(lone)
    _, lone_lat, _ = driver.closed_loop('create', singles, 1)
    driver.burst('delete', singles)
    return {'create_rate': create_rate, 'delete_rate': delete_rate,
            'cpu_per_create': (cpu1 - cpu0) / count,
            'cpu_per_delete': (cpu2 - cpu1) / count,
            'create_burst_latencies': create_lat,
            'delete_burst_latencies': delete_lat,
            'lone_create_latencies': lone_lat}


def _median(values):
    values = sorted(values)
    n = len(values)
    return (values[n // 2] if n % 2 else
            (values[n // 2 - 1] + values[n // 2]) / 2)


def _figures(run):
    return {'creates/s': run['create_rate'], 'deletes/s': run['delete_rate'],
            'CPU per create': run['cpu_per_create'] * 1e3,
            'CPU per delete': run['cpu_per_delete'] * 1e3,
            'lone create p50': percentile(run['lone_create_latencies'],
                                          50) * 1e3}


UNITS = {'creates/s': 'vol/s', 'deletes/s': 'vol/s', 'CPU per create': 'ms',
         'CPU per delete': 'ms', 'lone create p50': 'ms'}
# ours / cinder-volume: what the issue asks of each ratio.
TARGETS = {'creates/s': ('>= 5', lambda r: r >= 5),
           'deletes/s': ('>= 5', lambda r: r >= 5),
           'CPU per create': ('<= 0.2', lambda r: r <= 0.2),
           'CPU per delete': ('<= 0.2', lambda r: r <= 0.2),
           'lone create p50': (None, None)}


def record(results, rounds, raw_cast, raw_call_p50, count, lone):
    """Rows: each side's medians over rounds, then ratios per round's median."""
    sides = list(rounds[0])
    per_side = {side: [_figures(r[side]) for r in rounds] for side in sides}
    for side in sides:
        for metric, unit in UNITS.items():
            results.add(SECTION, '%s %s' % (side, metric), _median(
                [f[metric] for f in per_side[side]]), unit)
    ranges = []
    for side in sides:
        if side == 'cinder-volume':
            continue
        tag = side.split(' ', 1)[1] if ' ' in side else side
        for metric in UNITS:
            ratios = [o[metric] / c[metric] for o, c in
                      zip(per_side[side], per_side['cinder-volume'])]
            target, met = TARGETS[metric]
            value = _median(ratios)
            results.add(SECTION, 'ratio ours/cinder %s %s' % (metric, tag),
                        value, 'x', target, met(value) if met else None)
            if len(ratios) > 1:
                ranges.append('%s %s %.2f-%.2f' % (metric, tag, min(ratios),
                                                    max(ratios)))
    for side in sides:
        figures = per_side[side]
        if raw_cast:
            for metric in ('creates/s', 'deletes/s'):
                results.add(SECTION, 'ratio %s %s / raw cast rate' % (
                    side, metric), _median([f[metric] for f in figures])
                    / raw_cast, 'x')
        if raw_call_p50:
            value = _median([f['lone create p50'] for f in figures]) \
                / raw_call_p50
            ours = side != 'cinder-volume'
            results.add(SECTION, 'ratio %s lone create p50 / raw call p50'
                        % side, value, 'x', '<= 3' if ours else None,
                        (value <= 3) if ours else None)
    results.note(
        'Peer section: %d round(s), each a burst of %d create casts then %d '
        'deletes (rate = count / time to the last end notification, CPU '
        'from /proc of the serving process over the burst, background '
        'tasks included) and %d lone creates one at a time, cinder-volume '
        'first, then ours; values are medians over rounds, ratios the '
        'median of per-round ratios.%s' % (
            len(rounds), count, count, lone,
            (' Per-round ratio ranges: ' + '; '.join(ranges) + '.')
            if ranges else ''))


def measure(bench, results, count, lone, rounds, warm):
    """Run the peer section; ``bench`` gives the workers and the config."""
    import control
    from raw_rpc import SECTION as RAW
    state = bench.state
    venv = bench.args.peer_venv or os.path.join(state, 'cinder-venv')
    ensure_cinder_venv(venv, os.path.join(state, 'cinder-pip.log'))
    transport_url = bench.conf.transport_url
    cinder = CinderVolume(venv, state, transport_url)
    ours = {}
    collector = None
    try:
        for executor in bench.args.executors:
            worker, _, settings = bench.new_worker('peer-' + executor,
                                                   executor)
            worker.start(wait_ready=False)
            ours['volume-worker [%s]' % executor] = (worker, settings)
        cinder.start()
        for worker, _ in ours.values():
            worker.wait_for_log('volume-worker started on', 90)
        # A collector of its own: the run's may have lost its consumer to
        # a broker restart in an earlier section.
        collector = common.EventCollector(transport_url).start()
        drivers = {side: control.Driver(bench.conf, collector,
                                        settings['backends'][0])
                   for side, (worker, settings) in ours.items()}
        done = []
        for i in range(rounds):
            one = {'cinder-volume': cinder.drive(
                count, lone, warm if i == 0 else 0)}
            for side, drv in drivers.items():
                one[side] = drive_ours(drv, ours[side][0].pid, count, lone,
                                       warm if i == 0 else 0)
            done.append(one)
        errors, locked = cinder.errors()
        record(results, done, results.get(RAW, 'cast consumed rate'),
               results.get(RAW, 'call sequential p50'), count, lone)
        results.note(
            'cinder-volume %s (FakeLoggingVolumeDriver, SQLite, '
            'notifications on, eventlet, its default classic transient '
            'queues; ours: the fake driver, SQLite, notifications on, our '
            'default durable quorum queues) '
            'logged %d ERROR records, %d of them "database is locked" (its '
            'quota commits on SQLite under a burst; the operations still '
            'complete).' % (CINDER_VERSION, errors, locked))
    finally:
        cinder.stop()
        for worker, _ in ours.values():
            worker.stop()
        if collector is not None:
            collector.close()
        try:
            delete_queues(transport_url, cinder.queues())
        except Exception as exc:  # the broker gone: nothing to tidy
            _log('could not delete the peer queues: %s' % exc)

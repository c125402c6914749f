"""Start a real ``volume-worker`` process on a config of its own, and talk to it.

Used by the functional tests and the benchmarks: each worker gets a unique
host name, scheduler topic and state directory, so runs never see each
other's queues, reports or files.
"""

import os
import signal
import subprocess
import sys
import time
import uuid

VENV_BIN = os.path.dirname(sys.executable)

# Host names and scheduler topics of the workers configured by this process:
# what a test session removes from the broker at its end (cleanup_broker).
CONFIGURED = {'queues': set(), 'exchanges': set()}

# Queues that belong to one process (RPC reply and fanout queues) outlive
# it by this long on the broker ([oslo_messaging_rabbit]
# rabbit_transient_queues_ttl, oslo.messaging's default 1800 s).
TRANSIENT_QUEUES_TTL = 60


def write_config(state_dir, host=None, executor='eventlet', backends=None,
                 database=None, extra_default=None, scheduler_topic=None,
                 coordination_url=None, sections=None):
    """Write a worker config under ``state_dir``; returns (path, settings).

    ``backends`` maps section name to a dict of its options (default: one
    fake backend ``fake1``); ``sections`` adds other sections the same way
    (``{'oslo_messaging_rabbit': {...}, 'client': {...}}``).
    """
    os.makedirs(state_dir, exist_ok=True)
    host = host or 'node-%s' % uuid.uuid4().hex[:8]
    scheduler_topic = scheduler_topic or 'volume-scheduler-%s' % host
    sections = dict(sections or {})
    sections['oslo_messaging_rabbit'] = dict(
        {'rabbit_transient_queues_ttl': str(TRANSIENT_QUEUES_TTL)},
        **sections.get('oslo_messaging_rabbit', {}))
    backends = backends or {'fake1': {
        'volume_driver': 'drivers.fake.FakeDriver',
        'volume_backend_name': 'fake1'}}
    topic = (extra_default or {}).get('volume_topic', 'volume-worker')
    for server in (host, (extra_default or {}).get('cluster')):
        for backend in (backends if server else ()):
            CONFIGURED['queues'].add('%s.%s@%s' % (topic, server, backend))
    CONFIGURED['exchanges'].add('%s_fanout' % scheduler_topic)
    lines = ['[DEFAULT]',
             'state_path = %s' % state_dir,
             'host = %s' % host,
             'executor = %s' % executor,
             'enabled_backends = %s' % ','.join(backends),
             'scheduler_topic = %s' % scheduler_topic,
             'report_interval = 1',
             'backend_stats_polling_interval = 2',
             'graceful_shutdown_timeout = 20']
    for key, value in (extra_default or {}).items():
        lines.append('%s = %s' % (key, value))
    lines += ['', '[database]', 'connection = %s' % (
        database or 'sqlite:///%s/volume-worker.sqlite' % state_dir)]
    lines += ['', '[coordination]', 'backend_url = %s' % (
        coordination_url or 'file://%s/locks' % state_dir)]
    for name, options in dict(sections, **backends).items():
        lines += ['', '[%s]' % name]
        lines += ['%s = %s' % item for item in options.items()]
    path = os.path.join(state_dir, 'volume-worker.conf')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    # As an operator should keep them (the worker warns otherwise).
    os.chmod(path, 0o600)
    os.chmod(state_dir, 0o700)
    return path, {'host': host, 'scheduler_topic': scheduler_topic,
                  'backends': ['%s@%s' % (host, b) for b in backends]}


def python_for_any_user(workdir='/tmp/volume-worker-test-python'):
    """An interpreter a worker can keep importing after it drops to a plain
    user, with this venv's packages.

    This venv's base Python may live under a home directory closed to
    other users (pyenv under /root): then a venv of the system's python3
    of the same minor version is made once, reading this venv's
    site-packages (through a .pth file, so their own .pth files count).
    """
    import stat
    import sysconfig

    def open_to_all(path):
        while path not in ('/', ''):
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
            path = os.path.dirname(path)
        return True

    base = os.path.realpath(sys.executable)
    if open_to_all(os.path.dirname(base)) and open_to_all(
            sysconfig.get_paths()['stdlib']):
        return sys.executable
    version = 'python%d.%d' % sys.version_info[:2]
    system = os.path.join('/usr/bin', version)
    if not os.path.exists(system):
        raise RuntimeError('%s is closed to other users and %s is missing'
                           % (base, system))
    python = os.path.join(workdir, 'bin', 'python')
    if not os.path.exists(python):
        # Made aside and renamed into place: test runs share it.
        import tempfile
        building = tempfile.mkdtemp(prefix=os.path.basename(workdir) + '.',
                                    dir=os.path.dirname(workdir))
        subprocess.run([system, '-m', 'venv', '--without-pip', building],
                       check=True)
        site = sysconfig.get_paths()['purelib']
        with open(os.path.join(building, 'lib', version, 'site-packages',
                               'volume-worker-venv.pth'), 'w') as f:
            f.write('import site; site.addsitedir(%r)\n' % site)
        os.chmod(building, 0o755)
        try:
            os.rename(building, workdir)
        except OSError:         # another run made it first
            import shutil
            shutil.rmtree(building, ignore_errors=True)
    return python


class WorkerProcess:
    """A worker started from the console script; stopped on ``stop()``.

    ``python``: run ``python -m volume_worker.cmd.worker`` instead (an
    interpreter of ``python_for_any_user`` for a worker that drops root).
    """

    def __init__(self, config_path, log_path=None, python=None):
        self.config_path = config_path
        self.log_path = log_path or config_path + '.log'
        self.python = python
        self.proc = None

    def start(self, wait_ready=True, timeout=60, env=None):
        self._log = open(self.log_path, 'ab')
        command = ([self.python, '-m', 'volume_worker.cmd.worker']
                   if self.python else
                   [os.path.join(VENV_BIN, 'volume-worker')])
        self.proc = subprocess.Popen(
            command + ['--config-file', self.config_path],
            stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONWARNINGS='ignore', **(env or {})))
        if wait_ready:
            self.wait_for_log('volume-worker started on', timeout)
        return self

    def log_text(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def wait_for_log(self, text, timeout=60, start=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text()[start:]:
                return True
            if self.proc.poll() is not None:
                raise RuntimeError('worker exited with %s before %r:\n%s' % (
                    self.proc.returncode, text, self.log_text()[-4000:]))
            time.sleep(0.05)
        raise TimeoutError('worker did not log %r within %ss:\n%s' % (
            text, timeout, self.log_text()[-4000:]))

    @property
    def pid(self):
        return self.proc.pid

    def kill(self):
        """SIGKILL: a crash, with no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout=60):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.terminate(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        finally:
            self._log.close()


def cleanup_broker(transport_url='amqp://guest:guest@127.0.0.1:5672//'):
    """Delete the queues and exchanges of the workers configured here.

    Each worker's queues are durable (they wait for it across restarts),
    and the fanout exchange it declares for its reports is never bound
    when no scheduler listens: neither goes by itself. Returns how many
    were deleted.
    """
    import kombu
    deleted = 0
    url = transport_url.replace('rabbit://', 'amqp://', 1)
    with kombu.Connection(url, connect_timeout=5) as conn:
        for kind, names in (('queue', CONFIGURED['queues']),
                            ('exchange', CONFIGURED['exchanges'])):
            for name in sorted(names):
                channel = conn.channel()
                try:
                    if kind == 'queue':
                        channel.queue_delete(name)
                    else:
                        channel.exchange_delete(name)
                    deleted += 1
                except conn.channel_errors:
                    pass  # already gone
                finally:
                    try:
                        channel.close()
                    except Exception:  # closed by the broker's refusal
                        pass
            names.clear()
    return deleted


def purge_queues(names,
                 transport_url='amqp://guest:guest@127.0.0.1:5672//'):
    """Empty the named queues (those that exist)."""
    import kombu
    with kombu.Connection(transport_url, connect_timeout=5) as conn:
        for name in names:
            channel = conn.channel()
            try:
                channel.queue_purge(name)
            except conn.channel_errors:
                pass  # absent
            finally:
                try:
                    channel.close()
                except Exception:  # closed by the broker's refusal
                    pass


def rabbitmqctl(*args, timeout=60):
    return subprocess.run(['rabbitmqctl', '-q'] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def broker_answers():
    """True when RabbitMQ accepts connections and has finished starting."""
    import socket
    try:
        with socket.create_connection(('127.0.0.1', 5672), timeout=1):
            pass
    except OSError:
        return False
    return rabbitmqctl('await_startup', timeout=30).returncode == 0


class BrokerOutage:
    """``with BrokerOutage():`` RabbitMQ is stopped inside, started after.

    ``rabbitmqctl stop_app``/``start_app``; the broker is always started
    again (and awaited), whatever happens inside.
    """

    def __enter__(self):
        result = rabbitmqctl('stop_app')
        if result.returncode != 0:
            self.restore()
            raise RuntimeError('rabbitmqctl stop_app failed: %s'
                               % result.stderr)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.restore()

    @staticmethod
    def restore(timeout=60):
        rabbitmqctl('start_app')
        deadline = time.monotonic() + timeout
        while not broker_answers():
            if time.monotonic() > deadline:
                raise TimeoutError('RabbitMQ not back within %ss' % timeout)
            time.sleep(0.5)


def client_config(conf_path):
    """An oslo.config ConfigOpts (the global one) parsed from a worker config."""
    from volume_worker import config
    from oslo_config import cfg
    cfg.CONF.reset()
    cfg.CONF.clear()
    return config.parse_args(['--config-file', conf_path])

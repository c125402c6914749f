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
    backends = backends or {'fake1': {
        'volume_driver': 'drivers.fake.FakeDriver',
        'volume_backend_name': 'fake1'}}
    lines = ['[DEFAULT]',
             'state_path = %s' % state_dir,
             'host = %s' % host,
             'executor = %s' % executor,
             'enabled_backends = %s' % ','.join(backends),
             'scheduler_topic = %s' % scheduler_topic,
             'report_interval = 1',
             'backend_stats_polling_interval = 2',
             'graceful_shutdown_timeout = 20',
             'driver_setup_retries = 1']
    for key, value in (extra_default or {}).items():
        lines.append('%s = %s' % (key, value))
    lines += ['', '[database]', 'connection = %s' % (
        database or 'sqlite:///%s/volume-worker.sqlite' % state_dir)]
    lines += ['', '[coordination]', 'backend_url = %s' % (
        coordination_url or 'file://%s/locks' % state_dir)]
    for name, options in dict(sections or {}, **backends).items():
        lines += ['', '[%s]' % name]
        lines += ['%s = %s' % item for item in options.items()]
    path = os.path.join(state_dir, 'volume-worker.conf')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path, {'host': host, 'scheduler_topic': scheduler_topic,
                  'backends': ['%s@%s' % (host, b) for b in backends]}


class WorkerProcess:
    """A worker started from the console script; stopped on ``stop()``."""

    def __init__(self, config_path, log_path=None):
        self.config_path = config_path
        self.log_path = log_path or config_path + '.log'
        self.proc = None

    def start(self, wait_ready=True, timeout=60):
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [os.path.join(VENV_BIN, 'volume-worker'), '--config-file',
             self.config_path],
            stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONWARNINGS='ignore'))
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


def client_config(conf_path):
    """An oslo.config ConfigOpts (the global one) parsed from a worker config."""
    from volume_worker import config
    from oslo_config import cfg
    cfg.CONF.reset()
    cfg.CONF.clear()
    return config.parse_args(['--config-file', conf_path])

"""A private tgtd for tests and benchmarks: start, crash, restart, stop.

It runs on a free control port and portal so it never touches an operator's
instance, and stops the way tgtd needs: every target deleted with --force,
then ``--op delete --mode system`` (tgtd ignores SIGTERM).
"""

import os
import socket
import subprocess
import time

from drivers import tgt


class TgtdUnavailable(RuntimeError):
    """tgtd cannot run here (no free port, it exits, it does not answer)."""


def free_tcp_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def free_control_port():
    """A control port no tgtd serves. A killed tgtd leaves its socket file
    behind: a file nobody listens on is free (tgtd binds it again)."""
    for port in range(40, 100):
        path = '/var/run/tgtd/socket.%d' % port
        if not os.path.exists(path):
            return port
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                return port
            except OSError:
                continue
    raise TgtdUnavailable('no free tgtd control port')


class Tgtd:
    """A private tgtd instance: start, crash, restart, stop."""

    def __init__(self, control_port, portal_port, logdir, iothreads=None):
        self.control_port = control_port
        self.portal_port = portal_port
        self.logdir = logdir
        # tgtd -t: I/O threads per LUN (tgtd's default is 16)
        self.iothreads = iothreads
        self.proc = None

    @classmethod
    def on_free_ports(cls, logdir, iothreads=None):
        return cls(free_control_port(), free_tcp_port(), logdir, iothreads)

    def tgtadm(self, *args, check=True):
        return subprocess.run(
            ['tgtadm', '-C', str(self.control_port), '--lld', 'iscsi']
            + [str(a) for a in args],
            capture_output=True, text=True, check=check)

    def start(self):
        log = open(os.path.join(self.logdir, 'tgtd.log'), 'ab')
        self.proc = subprocess.Popen(
            ['tgtd', '-f', '-C', str(self.control_port), '--iscsi',
             'portal=127.0.0.1:%d' % self.portal_port] +
            (['-t', str(self.iothreads)] if self.iothreads else []),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TgtdUnavailable('tgtd exited at start (%s); see %s'
                                      % (self.proc.returncode, self.logdir))
            if self.tgtadm('--op', 'show', '--mode', 'target',
                           check=False).returncode == 0 \
                    and self._portal_open():
                return
            time.sleep(0.05)
        self.kill()
        raise TgtdUnavailable('tgtd did not come up within 10 s')

    def _portal_open(self):
        with socket.socket() as s:
            return s.connect_ex(('127.0.0.1', self.portal_port)) == 0

    def kill(self):
        """Crash it (tgtd ignores SIGTERM)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def discard(self):
        """Kill it and remove its control socket files: for a private
        instance with many targets, where deleting them one by one (stop)
        takes tgtd minutes."""
        self.kill()
        for suffix in ('', '.lock'):
            try:
                os.unlink('/var/run/tgtd/socket.%d%s'
                          % (self.control_port, suffix))
            except FileNotFoundError:
                pass

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        out = self.tgtadm('--op', 'show', '--mode', 'target',
                          check=False).stdout
        for target in tgt.parse_targets(out).values():
            self.tgtadm('--op', 'delete', '--mode', 'target', '--force',
                        '--tid', target.tid, check=False)
        self.tgtadm('--op', 'delete', '--mode', 'system', check=False)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()

    def targets(self):
        return tgt.parse_targets(
            self.tgtadm('--op', 'show', '--mode', 'target').stdout)

    def accounts(self):
        out = self.tgtadm('--op', 'show', '--mode', 'account').stdout
        return [line.strip() for line in out.splitlines()[1:] if line.strip()]

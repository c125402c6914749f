"""The notify protocol spoken over a plain datagram socket."""

import os
import socket

from volume_worker import systemd


def _listen(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    return sock


def test_ready_status_and_watchdog_reach_the_socket(tmp_path):
    path = str(tmp_path / 'notify')
    sock = _listen(path)
    env = {'NOTIFY_SOCKET': path, 'WATCHDOG_USEC': '10000000',
           'WATCHDOG_PID': str(os.getpid())}
    notifier = systemd.Notifier(env)
    assert env == {}  # child processes do not inherit it
    notifier.ready('serving h@b')
    lines = sock.recv(1024).decode().splitlines()
    assert lines[:2] == ['READY=1', 'STATUS=serving h@b']
    notifier.watchdog(now=100.0)
    assert sock.recv(1024) == b'WATCHDOG=1'
    notifier.watchdog(now=104.0)  # within half of the 10 s period
    notifier.watchdog(now=105.0)
    assert sock.recv(1024) == b'WATCHDOG=1'
    sock.settimeout(0.05)
    try:
        extra = sock.recv(1024)
    except socket.timeout:
        extra = None
    assert extra is None


def test_abstract_socket_names():
    name = '@volume-worker-test-%d' % os.getpid()
    sock = _listen('\0' + name[1:])
    systemd.Notifier({'NOTIFY_SOCKET': name}).stopping()
    assert sock.recv(1024).decode().splitlines()[0] == 'STOPPING=1'


def test_without_systemd_nothing_is_sent():
    notifier = systemd.Notifier({})
    assert not notifier.enabled
    assert notifier.send('READY=1') is False
    notifier.watchdog()


def test_a_watchdog_meant_for_another_process_is_ignored():
    notifier = systemd.Notifier({'NOTIFY_SOCKET': '/nonexistent',
                                 'WATCHDOG_USEC': '1000000',
                                 'WATCHDOG_PID': '1'})
    assert notifier.interval is None


def test_the_watchdog_waits_for_every_heartbeat_loop():
    assert systemd.loops_turning([100.0, 95.0, None], limit=30, now=110.0)
    assert not systemd.loops_turning([100.0, 70.0], limit=30, now=110.0)
    assert systemd.loops_turning([], limit=30, now=110.0)

"""The command-line tools say at once what is wrong: no config, no broker, no database."""

import os
import subprocess
import sys
import time

import pytest

BIN = os.path.dirname(sys.executable)


def _run(tmp_path, program, *args, timeout=60):
    # A HOME of its own: no ~/.volume-worker/ or ~/volume-worker.conf found.
    env = dict(os.environ, HOME=str(tmp_path), PYTHONWARNINGS='ignore')
    started = time.monotonic()
    out = subprocess.run([os.path.join(BIN, program), *args], cwd=tmp_path,
                         env=env, capture_output=True, text=True,
                         timeout=timeout)
    return out, time.monotonic() - started


@pytest.mark.skipif(os.path.exists('/etc/volume-worker/volume-worker.conf') or
                    os.path.exists('/etc/volume-worker.conf'),
                    reason='this machine has a config in a default location')
@pytest.mark.parametrize('program,args', [
    ('volume-worker-client', ['list']),
    ('volume-worker-client', ['create', '--size', '1']),
    ('volume-worker-manage', ['db', 'version']),
    ('volume-worker-manage', ['service', 'list']),
])
def test_no_config_file_is_said_at_once(tmp_path, program, args):
    out, took = _run(tmp_path, program, *args)
    assert out.returncode == 2
    assert out.stderr.startswith('error: no configuration file: give '
                                 '--config-file FILE')
    assert '/etc/volume-worker/' in out.stderr
    assert 'Traceback' not in out.stderr and len(
        out.stderr.splitlines()) == 1
    assert took < 15, took


def test_a_config_file_that_is_not_there(tmp_path):
    out, _ = _run(tmp_path, 'volume-worker-client', '--config-file',
                  str(tmp_path / 'nope.conf'), 'list')
    assert out.returncode == 2
    assert 'error: Failed to find some config files' in out.stderr


def test_manage_names_the_database_it_cannot_open(tmp_path):
    conf = tmp_path / 'w.conf'
    conf.write_text('[database]\nconnection = postgresql+psycopg2://u:'
                    's3cret@127.0.0.1:1/x\n')
    out, _ = _run(tmp_path, 'volume-worker-manage', '--config-file',
                  str(conf), 'db', 'version')
    assert out.returncode == 1
    assert out.stderr.startswith(
        'error: db version failed (database postgresql+psycopg2://u:***@'
        '127.0.0.1:1/x): OperationalError')
    assert 's3cret' not in out.stderr and 'Traceback' not in out.stderr
    assert len(out.stderr.splitlines()) == 1


@pytest.mark.parametrize('args', [['list'], ['show', '0' * 8 + '-0000-'
                                             '0000-0000-' + '0' * 12],
                                  ['capabilities'],
                                  ['create', '--size', '1']])
def test_every_command_honours_the_deadline_without_a_broker(tmp_path, args):
    """Nothing listens on the port: reads fail at the deadline as casts do."""
    conf = tmp_path / 'w.conf'
    conf.write_text('[DEFAULT]\ntransport_url = rabbit://guest:guest@'
                    '127.0.0.1:1/\n[client]\ncast_retry_deadline = 2\n')
    out, took = _run(tmp_path, 'volume-worker-client', '--config-file',
                     str(conf), *args)
    assert out.returncode == 1
    assert out.stderr.startswith('error: request not delivered within 2s: '
                                 'broker unreachable: 127.0.0.1:1')
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert took < 12, took

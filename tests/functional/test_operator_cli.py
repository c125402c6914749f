"""The command-line tools as an operator and a script see them: a table on a
terminal (a pseudo-terminal here), JSON with --json, one timestamp form,
help that shows --config-file, a manage tool that lists its commands."""

import json
import os
import pty
import re
import subprocess

import pytest

from tests.functional.conftest import start_harness
from volume_worker.testing import process

ISO_UTC = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$')


def run(argv, tty=False, timeout=60):
    """(exit code, stdout, stderr) of a tool, its stdout a terminal or a pipe."""
    exe = os.path.join(process.VENV_BIN, argv[0])
    if not tty:
        done = subprocess.run([exe] + argv[1:], capture_output=True,
                              text=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    os.set_blocking(master, True)
    proc = subprocess.Popen([exe] + argv[1:], stdout=slave,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, COLUMNS='200'))
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stderr = proc.stderr.read()
    code = proc.wait(timeout)
    return code, b''.join(chunks).decode().replace('\r\n', '\n'), stderr


@pytest.fixture(scope='module')
def harness(tmp_path_factory):
    h = start_harness(tmp_path_factory.mktemp('cli'))
    volume = h.new_volume(display_name='cli-volume')
    h.api.create_volume(h.ctx, h.backend(), volume)
    h.wait_status(volume.id, ['available'])
    h.volume_id = volume.id
    yield h
    h.close()
    h.worker.stop()


def conf_args(h):
    return ['--config-file', h.worker.config_path]


def test_client_list_is_a_table_on_a_terminal_and_json_with_json(harness):
    h = harness
    code, out, err = run(['volume-worker-client'] + conf_args(h) +
                         ['list', '--backend', h.backend()], tty=True)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ['ID', 'DISPLAY_NAME', 'STATUS']
    assert set(lines[1].replace(' ', '')) == {'-'}
    row = next(l for l in lines if h.volume_id in l)
    assert 'cli-volume' in row and 'available' in row
    with pytest.raises(ValueError):
        json.loads(out)

    for tty in (True, False):
        code, out, err = run(['volume-worker-client'] + conf_args(h) +
                             ['list', '--backend', h.backend(), '--json'],
                             tty=tty)
        assert code == 0, err
        volumes = json.loads(out)
        mine = next(v for v in volumes if v['id'] == h.volume_id)
        assert mine['status'] == 'available'
        assert ISO_UTC.match(mine['created_at']), mine['created_at']


def test_client_show_is_a_record_table(harness):
    h = harness
    code, out, err = run(['volume-worker-client'] + conf_args(h) +
                         ['show', h.volume_id, '--backend', h.backend()],
                         tty=True)
    assert code == 0, err
    fields = dict(line.split(None, 1) for line in out.strip().splitlines()[2:]
                  if len(line.split(None, 1)) == 2)
    assert fields['id'] == h.volume_id and fields['status'] == 'available'
    assert ISO_UTC.match(fields['created_at'])


def test_manage_service_list_table_and_json(harness):
    h = harness
    code, out, err = run(['volume-worker-manage'] + conf_args(h) +
                         ['service', 'list'], tty=True)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ['HOST', 'BINARY']
    assert any(h.backend() in l and ' up ' in ' %s ' % l for l in lines)
    code, out, err = run(['volume-worker-manage'] + conf_args(h) +
                         ['--json', 'service', 'list'], tty=True)
    rows = json.loads(out)
    row = next(r for r in rows if r['host'] == h.backend())
    assert row['state'] == 'up'
    assert ISO_UTC.match(row['updated_at']) and ISO_UTC.match(
        row['recovered_at'])


def test_watch_says_first_what_it_listens_to(harness):
    h = harness
    code, out, err = run(['volume-worker-client'] + conf_args(h) +
                         ['watch', '--seconds', '3'], tty=True)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith('watching amqp://') or first.startswith(
        'watching rabbit://'), first
    assert 'notifications' in first and 'capability reports' in first
    assert 'guest:guest' not in first  # no password
    # A capability report arrives every 2 s here: a readable line.
    assert any(' capabilities ' in l and h.backend() in l
               for l in out.splitlines()[1:]), out
    # For scripts: stdout only JSON lines, the first line on stderr.
    code, out, err = run(['volume-worker-client'] + conf_args(h) +
                         ['watch', '--seconds', '3'])
    assert code == 0 and err.startswith('watching ')
    events = [json.loads(l) for l in out.splitlines()]
    assert events and all(ISO_UTC.match(e['timestamp']) for e in events)


def test_help_shows_config_file_and_manage_lists_its_commands():
    code, out, _ = run(['volume-worker-client', '--help'])
    assert code == 0 and '--config-file FILE' in out and '--json' in out
    code, out, _ = run(['volume-worker-manage', '--help'])
    assert code == 0 and '--config-file FILE' in out
    for command in ('db sync', 'db version', 'service list',
                    'journal list'):
        assert re.search(r'^  %s\s+\S' % command, out, re.M), command
    code, _, err = run(['volume-worker-manage'])
    assert code == 2 and 'service list' in err and 'db sync' in err

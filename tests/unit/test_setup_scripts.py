"""The README's two commands on a machine that has never seen RabbitMQ.

tools/run-worker and tools/run-tests run from a copy of the project, in a
network namespace where nothing answers, with a PATH of basic tools only: no
broker, no Debian tools, a Python without ensurepip (as Debian's without
python3-venv) and an apt-get that records any call. VW_SETUP_DRY_RUN=1 makes
the scripts print what they would install and start; VW_SETUP_UID plays root
or another user. What must never come out is a connection error.
"""

import os
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PROJECT_FILES = ('tools/setup', 'tools/ensure-services', 'tools/run-worker',
                 'tools/run-tests', 'requirements.txt',
                 'test-requirements.txt', 'setup.cfg',
                 'etc/volume-worker/volume-worker.conf.local')
BASIC_TOOLS = ('bash', 'cat', 'cut', 'dirname', 'head', 'id', 'ls', 'mkdir',
               'sed', 'seq', 'sha1sum', 'sleep')
WORKER_PACKAGES = {'python3-venv', 'rabbitmq-server', 'qemu-utils'}
TEST_PACKAGES = WORKER_PACKAGES | {
    'tgt', 'libiscsi-bin', 'qemu-block-extra', 'btrfs-progs', 'xfsprogs',
    'postgresql', 'redis-server'}
NOT_ROOT = 1000
CONNECTION_ERRORS = ('does not answer', 'Connection refused',
                     'did not answer')


@pytest.fixture(scope='module')
def netns():
    """The command prefix that runs a script where nothing answers."""
    unshare = shutil.which('unshare')
    # An unprivileged user gets a network namespace inside a user namespace.
    prefix = [unshare, '-n' if os.geteuid() == 0 else '-rn']
    if unshare is None or subprocess.run(prefix + ['true']).returncode:
        pytest.skip('cannot make a network namespace here (unshare -n)')
    return prefix


@pytest.fixture
def machine(tmp_path, netns):
    """A copy of the project and a PATH without the broker's binaries."""
    project = tmp_path / 'project'
    for name in PROJECT_FILES:
        os.makedirs(project / os.path.dirname(name), exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), project / name)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in BASIC_TOOLS:
        os.symlink(shutil.which(tool), bin_dir / tool)
    apt_calls = tmp_path / 'apt-get.calls'
    shim(bin_dir, 'apt-get', 'echo "$*" >> %s; exit 1' % apt_calls)
    shim(bin_dir, 'python3',
         'case "$*" in *ensurepip*) exit 1;; esac; exec %s "$@"'
         % sys.executable)

    def run(script, uid, *args):
        env = {'PATH': str(bin_dir), 'HOME': str(tmp_path), 'LANG': 'C',
               'VW_SETUP_DRY_RUN': '1', 'VW_SETUP_UID': str(uid)}
        result = subprocess.run(
            netns + [str(project / 'tools' / script)] + list(args), env=env,
            capture_output=True, text=True, timeout=30)
        assert not apt_calls.exists(), 'apt-get ran in a dry run'
        assert not any(e in result.stderr for e in CONNECTION_ERRORS), (
            result.stderr)
        return result

    run.bin_dir = bin_dir
    run.project = project
    return run


def shim(bin_dir, name, body):
    path = bin_dir / name
    path.write_text('#!/bin/sh\n%s\n' % body)
    path.chmod(0o755)


def lines_starting(text, prefix):
    return [line[len(prefix):] for line in text.splitlines()
            if line.startswith(prefix)]


def installed_packages(stderr):
    """The packages of the would-be `apt-get install` (one at most)."""
    installs = lines_starting(stderr, 'would run: apt-get install -y -qq ')
    assert len(installs) <= 1, stderr
    return set(installs[0].split()) if installs else set()


@pytest.mark.parametrize('script, packages', [
    ('run-worker', WORKER_PACKAGES), ('run-tests', TEST_PACKAGES)])
def test_as_root_installs_and_starts_the_broker(machine, script, packages):
    result = machine(script, 0)
    assert result.returncode == 0, result.stderr
    assert installed_packages(result.stderr) == packages
    would_run = lines_starting(result.stderr, 'would run: ')
    assert would_run.index('apt-get update -qq') < would_run.index(
        'rabbitmq-server -detached')
    assert would_run[-1].startswith('.venv/bin/')   # then the command itself


@pytest.mark.parametrize('script', ['run-worker', 'run-tests'])
def test_not_root_prints_the_one_apt_command(machine, script):
    result = machine(script, NOT_ROOT)
    assert result.returncode != 0
    # One line, the command in it, and nothing attempted.
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    command = result.stderr.split('as root, run: ', 1)[1].strip()
    assert command.startswith('apt-get update && apt-get install -y ')
    assert 'rabbitmq-server' in command.split()
    assert 'would run' not in result.stderr


def test_installed_but_stopped_broker_is_started_not_installed(machine):
    for name in ('rabbitmq-server', 'rabbitmqctl'):
        shim(machine.bin_dir, name, 'exit 1')
    (machine.project / '.venv' / 'bin').mkdir(parents=True)
    shim(machine.project / '.venv' / 'bin', 'python', 'exit 1')
    result = machine('run-worker', 0)
    assert result.returncode == 0, result.stderr
    assert 'rabbitmq-server' not in installed_packages(result.stderr)
    assert 'would run: rabbitmq-server -detached' in result.stderr

    result = machine('run-worker', NOT_ROOT)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        'as root, run: rabbitmq-server -detached')


@pytest.mark.parametrize('url', [
    'postgresql://u@127.0.0.1/db',            # psycopg 3 in SQLAlchemy 2.1
    'postgresql+psycopg2://u@127.0.0.1/db',
    'mysql+pymysql://u@127.0.0.1/db'])
def test_documented_database_urls_have_their_driver(url):
    sa.engine.make_url(url).get_dialect().import_dbapi()

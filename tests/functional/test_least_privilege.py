"""The worker as an unprivileged user: root work only in its privsep daemons.

Started as root with ``[DEFAULT] user``, the worker starts its privsep
daemons, becomes that user, and serves the file backend over iSCSI through
a private tgtd: create, export (tgtd requests through the ``[privsep_tgt]``
daemon), a real initiator reading the LUN with the CHAP secret, a backup
(os-brick's connector through its own daemon), delete.
"""

import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from tests.functional.conftest import Harness
from tests.functional.test_file_driver_iscsi import PREFIX
from tests.functional.test_file_driver_iscsi import tgtd  # noqa: F401
from volume_worker import objects
from volume_worker.testing import process
from volume_worker.testing import state

GiB = 1 << 30
WORKER_USER = 'volume-worker'

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
]


def ensure_worker_user():
    """The system user the worker drops to (tools/setup makes it too)."""
    if os.geteuid() != 0:
        pytest.skip('starting the worker as root to drop privileges '
                    'needs root')
    if subprocess.run(['id', WORKER_USER], capture_output=True).returncode:
        useradd = shutil.which('useradd')
        if useradd is None:
            pytest.skip('useradd missing (Debian package passwd)')
        subprocess.run([useradd, '--system', '--no-create-home',
                        '--home-dir', '/nonexistent', '--shell',
                        '/usr/sbin/nologin', WORKER_USER], check=True)
    import pwd
    return pwd.getpwnam(WORKER_USER)


def proc_status(pid):
    fields = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            fields[key] = value.split()
    return fields


def privsep_daemons(conf_path):
    """pids of the privsep daemons started for the worker of ``conf_path``."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if b'oslo_privsep.daemon' in args and conf_path.encode() in args:
            found.append(int(pid))
    return found


def children(pid):
    out = subprocess.run(['ps', '-o', 'pid=', '--ppid', str(pid)],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def state_dir():
    # Not under pytest's tmp_path: /tmp/pytest-of-root is closed to the
    # worker's user.
    path = tempfile.mkdtemp(prefix='vw-unprivileged-', dir='/tmp')
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_unprivileged(state_dir, backends, executor='eventlet',
                       **extra_default):
    conf_path, settings = process.write_config(
        state_dir, backends=backends, executor=executor,
        extra_default=dict({'user': WORKER_USER}, **extra_default))
    worker = process.WorkerProcess(
        conf_path, python=process.python_for_any_user()).start()
    try:
        return Harness(state_dir, conf_path, settings, worker)
    except Exception:
        worker.stop()
        raise


@pytest.mark.parametrize('executor', ['eventlet', 'threading'])
def test_unprivileged_worker_serves_iscsi_exports(state_dir, tgtd,  # noqa
                                                  executor):
    user = ensure_worker_user()
    volume_dir = os.path.join(state_dir, 'volumes')
    h = start_unprivileged(state_dir, executor=executor, backends={'file1': {
        'volume_driver': 'drivers.file.FileVolumeDriver',
        'volume_backend_name': 'file1', 'file_volume_dir': volume_dir,
        'target_protocol': 'iscsi', 'target_ip_address': '127.0.0.1',
        'use_chap_auth': 'true', 'target_port': tgtd.portal_port,
        'target_prefix': PREFIX,
        'file_tgt_control_port': tgtd.control_port}, 'local1': {
        'volume_driver': 'drivers.file.FileVolumeDriver',
        'volume_backend_name': 'local1',
        'file_volume_dir': os.path.join(state_dir, 'local-volumes'),
        'target_protocol': 'local'}})
    try:
        status = proc_status(h.worker.pid)
        assert status['Uid'][:3] == [str(user.pw_uid)] * 3
        assert status['Gid'][:3] == [str(user.pw_gid)] * 3
        assert '0' not in status['Groups']     # none of root's groups
        assert int(status['CapEff'][0], 16) == 0
        daemons = privsep_daemons(h.worker.config_path)
        assert len(daemons) == 3, 'tgt and os-brick\'s two'
        # Every daemon is root without the full set of capabilities; the
        # tgt daemon keeps none.
        caps = sorted(int(proc_status(p)['CapEff'][0], 16) for p in daemons)
        assert all(proc_status(p)['Uid'][0] == '0' for p in daemons)
        assert 0 in caps
        assert all(c != int(proc_status(1)['CapEff'][0], 16) for c in caps)
        assert 'Running as %s' % WORKER_USER in h.worker.log_text()

        volume = h.new_volume(size=1)
        h.api.create_volume(h.ctx, h.backend(), volume)
        h.wait_notification('volume.create.end', volume.id)
        path = os.path.join(volume_dir, 'volume-%s' % volume.id)
        st = os.stat(path)
        assert (st.st_uid, st.st_mode & 0o777) == (user.pw_uid, 0o600)

        info = h.api.initialize_connection(
            h.ctx, h.backend(), volume.id,
            {'initiator': 'iqn.2026-11.test:unprivileged', 'host': 'h',
             'ip': '127.0.0.1'})
        data = info['data']
        assert data['target_iqn'] in tgtd.targets()
        url = 'iscsi://%s%%%s@127.0.0.1:%d/%s/%d' % (
            data['auth_username'], data['auth_password'], tgtd.portal_port,
            data['target_iqn'], data['target_lun'])
        out = subprocess.run(['iscsi-readcapacity16', url],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert 'Totalsize:%d' % GiB in out.stdout.replace(' ', '')

        h.api.remove_export(h.ctx, h.backend(), volume.id)
        h.api.delete_volume(h.ctx, h.backend(), volume.id)
        h.wait_notification('volume.delete.end', volume.id)
        assert data['target_iqn'] not in tgtd.targets()
        assert not os.path.exists(path)

        # A backup attaches a volume on this host through os-brick, whose
        # privileged calls (the host's connector) go to its own daemon: no
        # sudo here, so without the daemon it would fail.
        local = h.new_volume(size=1, backend=h.backend(1))
        h.api.create_volume(h.ctx, h.backend(1), local)
        h.wait_notification('volume.create.end', local.id)
        backup = objects.Backup(id=str(uuid.uuid4()), volume_id=local.id)
        h.api.create_backup(h.ctx, h.backend(1), backup)
        def backup_status():
            try:
                return h.api.get_backup(h.ctx, h.backend(1), backup.id).status
            except Exception as exc:    # until the cast is consumed
                if 'NotFound' not in type(exc).__name__:
                    raise
        state.wait_until(lambda: backup_status() in ('available', 'error'),
                         60, 'backup %s ended' % backup.id)
        got = h.api.get_backup(h.ctx, h.backend(1), backup.id)
        assert got.status == 'available', got.fail_reason

        for name in ('volume-worker.sqlite', 'locks', 'volumes', 'backups',
                     'local-volumes'):
            st = os.stat(os.path.join(state_dir, name))
            assert st.st_uid == user.pw_uid, name
            assert st.st_mode & 0o077 == 0, (name, oct(st.st_mode))
        # Lock files, backup chunks and metadata: private too.
        for top in ('locks', 'backups'):
            for root, dirs, files in os.walk(os.path.join(state_dir, top)):
                for name in dirs + files:
                    st = os.lstat(os.path.join(root, name))
                    assert st.st_mode & 0o077 == 0, (name, oct(st.st_mode))
                    assert st.st_uid == user.pw_uid, name
        assert os.listdir(os.path.join(state_dir, 'locks'))
        assert h.worker.terminate() == 0
    except Exception:
        print(h.worker.log_text()[-20000:])
        raise
    finally:
        h.close()
        h.worker.stop()


def test_unknown_user_is_refused_in_one_line(state_dir):
    if os.geteuid() != 0:
        pytest.skip('needs root')
    conf_path, _settings = process.write_config(
        state_dir, extra_default={'user': 'no-such-user-vw'})
    worker = process.WorkerProcess(conf_path).start(wait_ready=False)
    try:
        assert worker.proc.wait(60) == 2
        text = worker.log_text()
        assert "user 'no-such-user-vw': no such user" in text
        assert 'Traceback' not in text
    finally:
        worker.stop()


def test_workers_n_children_each_drop_to_the_user(state_dir):
    """workers = N: the parent stays root to restart children; each child
    starts its own privsep daemons and becomes the user."""
    user = ensure_worker_user()
    conf_path, settings = process.write_config(
        state_dir, extra_default={'workers': 2, 'user': WORKER_USER},
        backends={'file1': {'volume_driver': 'drivers.file.FileVolumeDriver',
                            'volume_backend_name': 'file1',
                            'file_volume_dir': os.path.join(state_dir, 'v'),
                            'target_protocol': 'local'}})
    for index in range(2):
        process.CONFIGURED['queues'].add(
            'volume-worker.%s-%d@file1' % (settings['host'], index))
    worker = process.WorkerProcess(
        conf_path, python=process.python_for_any_user()).start(
            wait_ready=False)
    try:
        state.wait_until(lambda: worker.log_text().count(
            'volume-worker started on') == 2, 90, 'both children started')
        members = children(worker.pid)
        assert len(members) == 2
        for pid in members:
            assert proc_status(pid)['Uid'][:3] == [str(user.pw_uid)] * 3
        # Each child started its own three.
        daemons = privsep_daemons(conf_path)
        assert len(daemons) == 6
        assert all(proc_status(p)['Uid'][0] == '0' for p in daemons)
        assert worker.log_text().count('Running as %s' % WORKER_USER) == 2
        assert worker.terminate(60) == 0
    finally:
        worker.stop()

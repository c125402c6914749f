"""Attachments end to end: the real broker, a worker process, real initiators.

Local: the connection info is connected with os-brick's LOCAL connector, a
pattern written, the volume detached and attached again, the pattern read
back. iSCSI: a private tgtd; libiscsi and qemu-img log in with exactly the
credentials ``attachment_update`` returned; after ``attachment_delete`` the
target is gone and those credentials are refused. kill -9 inside the
backend step of update and delete leaves nothing attaching/detaching and no
export behind.
"""

import os
import subprocess
import uuid

import pytest

from drivers import exception as driver_exception
from volume_worker import exception
from tests.functional.test_crash_recovery import running_rig
from tests.functional.test_file_driver_iscsi import PREFIX
from tests.functional.test_file_driver_iscsi import qemu_write
from tests.functional.test_file_driver_iscsi import tgtd  # noqa: F401
from volume_worker.objects import AttachStatus
from volume_worker.objects import VolumeStatus
from volume_worker.testing import state

MiB = 1 << 20
CONSUMER = {'host': 'consumer1', 'initiator': 'iqn.2026-11.test:consumer1',
            'ip': '127.0.0.1', 'multipath': False}


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    yield from running_rig(tmp_path_factory, 'attach')


def _attachments(rig, volume_id):
    return rig.api.list_attachments(rig.ctx, rig.backend, volume_id)


def _attach(rig, volume_id, connector=CONSUMER, complete=True):
    attachment = rig.api.attachment_update(rig.ctx, rig.backend, volume_id,
                                           connector)
    if complete:
        rig.api.attachment_complete(rig.ctx, rig.backend, volume_id,
                                    attachment.id)
    return attachment


def test_local_attach_write_detach_attach_read(rig):
    from oslo_config import cfg
    from drivers import datapath
    datapath.init_os_brick(cfg.CONF, lock_path=rig.state_dir,
                           in_process_privsep=os.geteuid() == 0)
    [volume_id] = rig.create_available(1)
    pattern = os.urandom(MiB)

    first = _attach(rig, volume_id)
    assert first.connection_info['driver_volume_type'] == 'local'
    assert rig.db.status(volume_id) == VolumeStatus.IN_USE
    [listed] = _attachments(rig, volume_id)
    assert (listed.id, listed.status) == (first.id, AttachStatus.ATTACHED)
    with datapath.Attachment(first.connection_info) as path:
        with open(path, 'r+b') as f:
            f.seek(3 * MiB)
            f.write(pattern)
    rig.api.attachment_delete(rig.ctx, rig.backend, volume_id, first.id)
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    assert _attachments(rig, volume_id) == []

    second = _attach(rig, volume_id)
    assert second.id != first.id
    with datapath.Attachment(second.connection_info) as path:
        with open(path, 'rb') as f:
            f.seek(3 * MiB)
            assert f.read(MiB) == pattern
    rig.api.attachment_delete(rig.ctx, rig.backend, volume_id, second.id)


def test_attached_volumes_refuse_what_would_hurt_them(rig):
    [volume_id] = rig.create_available(1)
    attachment = _attach(rig, volume_id)
    client = rig.api.client.prepare(server=rig.backend, timeout=10)
    for method, kwargs, words in (
            ('delete_volume', {}, 'in-use'),
            ('attachment_update', {'connector': CONSUMER}, 'multiattach')):
        with pytest.raises((exception.InvalidStatus,
                            exception.ResourceInUse)) as err:
            client.call(rig.ctx, method, volume_id=volume_id, **kwargs)
        assert words in str(err.value), err.value
    rig.api.attachment_delete(rig.ctx, rig.backend, volume_id, attachment.id)
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE


@pytest.mark.parametrize('connector, words', [
    ('not a dict', 'JSON object'),
    ({'host': 7}, 'host must be a string'),
    ({'host': 'h', 'x': 'y' * (1024 * 1024)}, 'bytes'),
    ({'host': 'h', 'nested': {'a': 1}}, 'nested'),
])
def test_bad_connectors_are_refused_and_change_nothing(rig, connector,
                                                       words):
    [volume_id] = rig.create_available(1)
    with pytest.raises(exception.InvalidConnector) as err:
        rig.api.attachment_update(rig.ctx, rig.backend, volume_id, connector)
    assert words in str(err.value)
    assert _attachments(rig, volume_id) == []
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE


@pytest.mark.parametrize('method', ['initialize_connection',
                                    'terminate_connection'])
def test_kill_inside_update_or_delete_then_restart(rig, method):
    [volume_id] = rig.create_available(1)
    attachment_id = str(uuid.uuid4())
    if method == 'terminate_connection':
        attachment_id = _attach(rig, volume_id).id
    rig.hang({volume_id: method})
    if method == 'initialize_connection':
        rig.api.client.prepare(server=rig.backend).cast(
            rig.ctx, 'attachment_update', volume_id=volume_id,
            connector=CONSUMER, attachment_id=attachment_id)
    else:
        rig.api.client.prepare(server=rig.backend).cast(
            rig.ctx, 'attachment_delete', volume_id=volume_id,
            attachment_id=attachment_id)
    rig.wait_inside({volume_id: method})
    assert attachment_id in rig.db.journal()
    rig.kill()
    rig.clear_faults()
    rig.start()

    attachments = _attachments(rig, volume_id)
    if method == 'initialize_connection':
        # Resumed: connected, waiting for its consumer to complete.
        [att] = attachments
        assert att.status == AttachStatus.ATTACHING
        assert att.connection_info['driver_volume_type'] == 'local'
        rig.api.attachment_delete(rig.ctx, rig.backend, volume_id, att.id)
    else:
        assert attachments == []
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    assert rig.db.volume(volume_id)['provider_location'] is None
    assert not rig.db.journal()
    rig.assert_consistent()


def test_client_attachment_subcommands(rig):
    import json
    [volume_id] = rig.create_available(1)

    run = rig.client

    out = run('attachment-update', volume_id, '--connector-local')
    assert out.returncode == 0, out.stderr
    attachment = json.loads(out.stdout)
    assert attachment['connection_info']['driver_volume_type'] == 'local'
    assert attachment['connector']['host']
    out = run('attachment-complete', volume_id, attachment['id'])
    assert json.loads(out.stdout)['status'] == 'attached'
    listed = json.loads(run('list-attachments', volume_id).stdout)
    assert [a['id'] for a in listed] == [attachment['id']]
    out = run('attachment-update', volume_id, '--connector', '{bad')
    assert out.returncode != 0 and 'not JSON' in out.stderr
    assert run('attachment-delete', volume_id,
               attachment['id']).returncode == 0
    assert json.loads(run('list-attachments', volume_id).stdout) == []


def test_iscsi_attachment_logs_in_with_the_returned_credentials(
        tmp_path, tgtd):  # noqa: F811
    from tests.functional.conftest import start_harness
    volume_dir = tmp_path / 'volumes'
    h = start_harness(tmp_path, backends={'file1': {
        'volume_driver': 'drivers.file.FileVolumeDriver',
        'volume_backend_name': 'file1', 'file_volume_dir': str(volume_dir),
        'target_protocol': 'iscsi', 'target_ip_address': '127.0.0.1',
        'use_chap_auth': True, 'report_discard_supported': True,
        'target_port': tgtd.portal_port, 'target_prefix': PREFIX,
        'file_tgt_control_port': tgtd.control_port}})
    try:
        volume = h.new_volume(size=1)
        h.api.create_volume(h.ctx, h.backend(), volume)
        h.wait_status(volume.id, ['available'])
        attachment = h.api.attachment_update(h.ctx, h.backend(), volume.id,
                                             CONSUMER)
        info = attachment.connection_info
        data = info['data']
        assert info['driver_volume_type'] == 'iscsi'
        assert data['auth_method'] == 'CHAP'
        assert data['discard'] is True
        url = 'iscsi://%s%%%s@%s/%s/%d' % (
            data['auth_username'], data['auth_password'],
            data['target_portal'], data['target_iqn'], data['target_lun'])
        inq = subprocess.run(['iscsi-inq', url], capture_output=True,
                             text=True, timeout=30)
        assert inq.returncode == 0, inq.stderr

        payload = os.urandom(MiB)
        source = tmp_path / 'payload.raw'
        source.write_bytes(payload)
        wrote = qemu_write(data, source, tmp_path)
        assert wrote.returncode == 0, wrote.stderr
        with open(volume_dir / ('volume-%s' % volume.id), 'rb') as f:
            assert f.read(MiB) == payload

        h.api.attachment_complete(h.ctx, h.backend(), volume.id,
                                  attachment.id)
        h.api.attachment_delete(h.ctx, h.backend(), volume.id, attachment.id)
        assert data['target_iqn'] not in tgtd.targets()
        refused = subprocess.run(['iscsi-inq', url], capture_output=True,
                                 text=True, timeout=30)
        assert refused.returncode != 0
        # The secret is in no log line and no notification.
        assert data['auth_password'] not in h.worker.log_text()
        h.seen.extend(h.events.poll(0.5))
        assert data['auth_password'] not in repr(h.seen)
    finally:
        h.close()
        h.worker.stop()


def test_legacy_path_and_snapshot_connections_with_real_data(rig):
    from oslo_config import cfg
    from drivers import datapath
    from tests.functional.test_snapshots import _cast_snapshot
    from tests.functional.test_snapshots import _wait_snapshot
    from volume_worker.objects import SnapshotStatus
    datapath.init_os_brick(cfg.CONF, lock_path=rig.state_dir,
                           in_process_privsep=os.geteuid() == 0)
    [volume_id] = rig.create_available(1)
    api, ctx, backend = rig.api, rig.ctx, rig.backend
    pattern = os.urandom(MiB)

    info = api.initialize_connection(ctx, backend, volume_id, CONSUMER)
    attachment = api.attach_volume(ctx, backend, volume_id,
                                   host_name='consumer1', mountpoint='/dev/x')
    assert rig.db.status(volume_id) == VolumeStatus.IN_USE
    with datapath.Attachment(info) as path:
        with open(path, 'r+b') as f:
            f.write(pattern)
    api.detach_volume(ctx, backend, volume_id, attachment.id)
    api.terminate_connection(ctx, backend, volume_id, CONSUMER)
    api.remove_export(ctx, backend, volume_id)
    state.wait_until(
        lambda: rig.db.volume(volume_id)['provider_location'] is None, 20,
        'export removed')
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE

    snapshot_id = _cast_snapshot(rig, volume_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.AVAILABLE)
    with open(os.path.join(rig.volume_dir, 'volume-' + volume_id),
              'r+b') as f:
        f.write(b'changed after the snapshot')
    snap_info = api.initialize_connection_snapshot(ctx, backend, snapshot_id,
                                                   CONSUMER)
    with datapath.Attachment(snap_info) as path:
        with open(path, 'rb') as f:
            assert f.read(MiB) == pattern
    api.terminate_connection_snapshot(ctx, backend, snapshot_id, CONSUMER)
    api.remove_export_snapshot(ctx, backend, snapshot_id)
    assert not rig.db.journal()


def test_legacy_connection_failure_and_kill(rig):
    from volume_worker.testing import drivers as faulty
    [volume_id] = rig.create_available(1)
    faulty.control(rig.control, {volume_id: {
        'initialize_connection': faulty.RAISE}})
    with pytest.raises(driver_exception.VolumeBackendAPIException) as err:
        rig.api.initialize_connection(rig.ctx, rig.backend, volume_id,
                                      CONSUMER)
    assert 'fault injected' in str(err.value)
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    assert not rig.db.journal()

    rig.hang({volume_id: 'initialize_connection'})
    rig.api.client.prepare(server=rig.backend).cast(
        rig.ctx, 'initialize_connection', volume_id=volume_id,
        connector=CONSUMER)
    rig.wait_inside({volume_id: 'initialize_connection'})
    assert volume_id in rig.db.journal()
    rig.kill()
    rig.clear_faults()
    rig.start()
    assert not rig.db.journal()
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    rig.assert_consistent()


def test_an_attach_does_not_rely_on_the_start_up_export_check(
        tmp_path, tgtd):  # noqa: F811
    """tgtd lost every export (a reboot). The start-up's background check
    failing, an attach makes its volume's export itself; an attach while the
    check is still inside the driver waits for the volume's lock and finds
    the export made. Either way the consumer logs in with the credentials
    the attach returned."""
    from tests.functional.test_crash_recovery import CrashRig
    from volume_worker.testing import drivers as faulty
    rig = CrashRig(tmp_path, backend_options={
        'target_protocol': 'iscsi', 'target_ip_address': '127.0.0.1',
        'use_chap_auth': True, 'target_port': tgtd.portal_port,
        'target_prefix': PREFIX, 'file_tgt_control_port': tgtd.control_port})
    rig.clear_faults()

    def login(attachment):
        data = attachment.connection_info['data']
        url = 'iscsi://%s%%%s@%s/%s/%d' % (
            data['auth_username'], data['auth_password'],
            data['target_portal'], data['target_iqn'], data['target_lun'])
        inq = subprocess.run(['iscsi-inq', url], capture_output=True,
                             text=True, timeout=30)
        assert inq.returncode == 0, inq.stderr

    def restart_with_tgtd_empty(faults):
        rig.stop()
        tgtd.kill()
        tgtd.start()
        assert tgtd.targets() == {}
        faulty.control(rig.control, faults)
        return rig.start()

    try:
        rig.start()
        first, second = rig.create_available(2)

        worker = restart_with_tgtd_empty({'*': {'ensure_exports': 'raise'}})
        worker.wait_for_log('0 exports ensured, 2 failed', 30)
        attachment = _attach(rig, first)
        login(attachment)
        assert rig.db.status(first) == VolumeStatus.IN_USE

        worker = restart_with_tgtd_empty({'*': {'ensure_exports': 4}})
        state.wait_until(lambda: os.path.exists(faulty.marker(
            rig.control, 'ensure_exports', None)), 30, 'check inside')
        assert 'exports ensured' not in worker.log_text()
        attachment = _attach(rig, second)
        assert '2 exports ensured, 0 failed' in worker.log_text()
        login(attachment)
    finally:
        rig.close()

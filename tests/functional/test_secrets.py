"""Secrets never leave where they belong: a full run, grepped for them.

An unprivileged worker with DEBUG logging, on a broker user with a random
password, exports volumes over iSCSI behind CHAP, attaches one, formats an
encrypted volume (LUKS, key from [key_manager] fixed_key), reports its
capabilities and writes a Guru Meditation report. Meanwhile every process's
arguments are sampled. Then the worker's log, the report, every
notification and capability report the listener saw, and every sampled
command line are searched for the CHAP secrets, the transport password and
the key: none may hold one.
"""

import datetime
import json
import os
import secrets
import signal
import threading
import time
import uuid

import pytest

from tests.functional.conftest import Harness
from tests.functional.test_broker_security import scoped_user  # noqa: F401
from tests.functional.test_file_driver_iscsi import PREFIX
from tests.functional.test_file_driver_iscsi import tgtd  # noqa: F401
from tests.functional.test_least_privilege import WORKER_USER
from tests.functional.test_least_privilege import ensure_worker_user
from tests.functional.test_least_privilege import state_dir  # noqa: F401
from volume_worker import image_store
from volume_worker.testing import process
from volume_worker.testing import state

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
]

MiB = 1 << 20


class ArgumentSampler:
    """Every process's command line, read from /proc while the run goes on."""

    def __init__(self):
        self.seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in os.listdir('/proc'):
                if not pid.isdigit():
                    continue
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as f:
                        self.seen.add(f.read())
                except OSError:
                    pass
            self._stop.wait(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def encrypted_type(conf):
    import sqlalchemy as sa
    from volume_worker.db import models
    engine = sa.create_engine(conf.database.connection)
    type_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(sa.insert(models.volume_types).values(
            id=type_id, name='luks-%s' % type_id[:8], is_public=True,
            extra_specs={}, encryption={'provider': 'luks',
                                        'cipher': 'aes-xts-plain64',
                                        'key_size': '256'},
            created_at=datetime.datetime.now(), deleted=False))
    engine.dispose()
    return type_id


def test_no_secret_in_logs_notifications_reports_or_arguments(
        state_dir, tgtd, scoped_user):  # noqa: F811
    ensure_worker_user()
    broker_user, broker_password = scoped_user
    fixed_key = secrets.token_hex(32)
    reports = os.path.join(state_dir, 'reports')
    images = image_store.LocalImageStore(os.path.join(state_dir, 'images'))
    raw = os.path.join(state_dir, 'disk.raw')
    with open(raw, 'wb') as f:
        f.write(os.urandom(MiB))
        f.truncate(4 * MiB)
    image_id = images.import_file(None, raw, 'img', 'raw')['id']
    conf_path, settings = process.write_config(
        state_dir, scheduler_topic='volume-scheduler',
        extra_default={
            'user': WORKER_USER, 'debug': 'true',
            'transport_url': 'rabbit://%s:%s@127.0.0.1:5672/%s' % (
                broker_user, broker_password, broker_user)},
        sections={'key_manager': {'fixed_key': fixed_key},
                  'oslo_reports': {'log_dir': reports}},
        backends={'file1': {
            'volume_driver': 'drivers.file.FileVolumeDriver',
            'volume_backend_name': 'file1',
            'file_volume_dir': os.path.join(state_dir, 'volumes'),
            'target_protocol': 'iscsi', 'target_ip_address': '127.0.0.1',
            'use_chap_auth': 'true', 'target_port': tgtd.portal_port,
            'target_prefix': PREFIX,
            'file_tgt_control_port': tgtd.control_port},
            # Images reach volumes through os-brick, which has no iSCSI
            # initiator here: the encrypted volume lives on a local one.
            'local1': {
            'volume_driver': 'drivers.file.FileVolumeDriver',
            'volume_backend_name': 'local1',
            'file_volume_dir': os.path.join(state_dir, 'local-volumes'),
            'target_protocol': 'local'}})
    os.makedirs(reports)
    chap = []
    with ArgumentSampler() as sampler:
        worker = process.WorkerProcess(
            conf_path, python=process.python_for_any_user()).start()
        h = Harness(state_dir, conf_path, settings, worker)
        captured = []       # every event the listener saw, matched or not
        poll = h.events.poll

        def capturing_poll(timeout):
            got = poll(timeout)
            captured.extend(got)
            return got
        h.events.poll = capturing_poll
        try:
            volume = h.new_volume()
            h.api.create_volume(h.ctx, h.backend(), volume)
            h.wait_status(volume.id, ('available',))
            attachment = h.api.attachment_update(
                h.ctx, h.backend(), volume.id,
                {'initiator': 'iqn.2026-11.test:secrets', 'host': 'h',
                 'ip': '127.0.0.1'})
            data = attachment.connection_info['data']
            chap.append(data['auth_password'])
            h.wait_notification('attachment.update.end', volume.id)

            from volume_worker import objects
            encrypted = objects.Volume(
                id=str(uuid.uuid4()), size=1, host=h.backend(1),
                image_id=image_id, volume_type_id=encrypted_type(h.conf))
            h.api.create_volume(h.ctx, h.backend(1), encrypted)
            h.wait_status(encrypted.id, ('available',), backend=h.backend(1),
                          timeout=60)
            with open(os.path.join(state_dir, 'local-volumes',
                                   'volume-%s' % encrypted.id), 'rb') as f:
                assert f.read(6) == b'LUKS\xba\xbe'
            h.wait_event(lambda e: e['kind'] == 'capabilities', timeout=30)

            os.kill(worker.pid, signal.SIGUSR2)
            state.wait_until(lambda: os.listdir(reports), 30,
                             'a Guru Meditation report')
            time.sleep(0.5)     # let the writer finish the file

            h.api.attachment_delete(h.ctx, h.backend(), volume.id,
                                    attachment.id)
            h.api.delete_volume(h.ctx, h.backend(), volume.id)
            h.wait_notification('volume.delete.end', volume.id)
            h.seen.extend(h.events.poll(1.0))
        except Exception:
            print(worker.log_text()[-6000:])
            raise
        finally:
            h.close()
            h.api.transport.cleanup()  # before its user is deleted
            worker.stop()

    secret_values = {'CHAP password': chap[0],
                     'transport password': broker_password,
                     'fixed_key': fixed_key}
    assert len(chap[0]) >= 12
    texts = {'worker log': worker.log_text()}
    for name in os.listdir(reports):
        with open(os.path.join(reports, name)) as f:
            texts['report ' + name] = f.read()
    texts['notifications and reports'] = json.dumps(captured, default=str)
    texts['process arguments'] = '\n'.join(
        cmd.replace(b'\0', b' ').decode('utf-8', 'replace')
        for cmd in sampler.seen)
    # The run did what it claims: DEBUG lines, a report, notifications, the
    # worker's own processes sampled.
    assert ' DEBUG ' in texts['worker log']
    assert any('attachment.update.end' in t for t in texts.values())
    assert 'volume_worker.cmd.worker' in texts['process arguments']
    assert len(texts) >= 4
    leaks = ['%s in %s' % (what, where)
             for what, value in secret_values.items()
             for where, text in texts.items() if value in text]
    assert leaks == []

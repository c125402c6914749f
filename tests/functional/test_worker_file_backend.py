"""The worker serving the create/delete path with the file-backed driver.

Local protocol: volumes are sparse files in the backend's directory. iSCSI:
each volume is exported through a private tgtd and a real initiator
(libiscsi) reads its capacity with the CHAP secret the worker stored.
"""

import os
import subprocess


from tests.functional.conftest import start_harness
from tests.functional.test_file_driver_iscsi import PREFIX
from tests.functional.test_file_driver_iscsi import tgtd  # noqa: F401 (fixture)

GiB = 1024 ** 3


def _file_backend(volume_dir, **extra):
    options = {'volume_driver': 'drivers.file.FileVolumeDriver',
               'volume_backend_name': 'file1',
               'file_volume_dir': str(volume_dir),
               'target_protocol': 'local'}
    options.update(extra)
    return {'file1': options}


def _files(volume_dir):
    return sorted(n for n in os.listdir(volume_dir) if not n.startswith('.'))


def test_local_file_backend_create_and_delete(tmp_path):
    volume_dir = tmp_path / 'volumes'
    h = start_harness(tmp_path, backends=_file_backend(volume_dir))
    try:
        volume = h.new_volume(size=2)
        h.api.create_volume(h.ctx, h.backend(), volume)
        h.wait_notification('volume.create.end', volume.id)
        path = volume_dir / ('volume-%s' % volume.id)
        assert _files(volume_dir) == [path.name]
        st = os.stat(path)
        assert st.st_size == 2 * GiB
        assert st.st_blocks * 512 < GiB  # sparse
        caps = h.api.get_capabilities(h.ctx, h.backend(), discover=True)
        assert caps['volume_backend_name'] == 'file1'
        assert caps['total_capacity_gb'] > 0
        assert caps['pools'][0]['allocated_capacity_gb'] == 2

        h.api.delete_volume(h.ctx, h.backend(), volume.id)
        h.wait_notification('volume.delete.end', volume.id)
        assert _files(volume_dir) == []
    finally:
        h.close()
        h.worker.stop()


def test_iscsi_file_backend_exports_with_chap(tmp_path, tgtd):  # noqa: F811
    volume_dir = tmp_path / 'volumes'
    h = start_harness(tmp_path, backends=_file_backend(
        volume_dir, target_protocol='iscsi', target_ip_address='127.0.0.1',
        use_chap_auth=True,
        target_port=tgtd.portal_port, target_prefix=PREFIX,
        file_tgt_control_port=tgtd.control_port))
    try:
        volume = h.new_volume(size=1)
        h.api.create_volume(h.ctx, h.backend(), volume)
        h.wait_notification('volume.create.end', volume.id)
        got = h.api.get_volume(h.ctx, h.backend(), volume.id)
        portal, iqn, lun = got.provider_location.split(' ')
        method, user, secret = got.provider_auth.split(' ')
        assert method == 'CHAP' and iqn == PREFIX + 'volume-' + volume.id
        assert iqn in tgtd.targets()
        url = 'iscsi://%s%%%s@127.0.0.1:%d/%s/%s' % (
            user, secret, tgtd.portal_port, iqn, lun)
        out = subprocess.run(['iscsi-readcapacity16', url],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert 'Totalsize:%d' % GiB in out.stdout.replace(' ', '')
        bad = url.replace(secret, 'wrong' + secret[5:])
        assert subprocess.run(['iscsi-readcapacity16', bad],
                              capture_output=True, timeout=30).returncode != 0
        # The secret is not in the worker's log or its notifications.
        assert secret not in h.worker.log_text()

        h.api.delete_volume(h.ctx, h.backend(), volume.id)
        h.wait_notification('volume.delete.end', volume.id)
        assert iqn not in tgtd.targets()
        assert _files(volume_dir) == []
    finally:
        h.close()
        h.worker.stop()

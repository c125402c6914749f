"""A driver written from the reference text alone, knowing nothing of the worker.

It keeps each volume and snapshot as a sparse file in a scratch directory,
hands out local connections, and reads its objects the way drivers written
for Cinder do (``volume['size']``, ``snapshot['volume_id']``...). The
worker must serve it as it serves its own drivers.
"""

import os
import tempfile

from drivers import base

GiB = 1 << 30
CHUNK = 1 << 20


def _copy_sparse(src, dst, size):
    """Copy ``src`` to ``dst`` (``size`` bytes), leaving zero chunks as holes."""
    with open(src, 'rb') as fin, open(dst, 'wb') as fout:
        while True:
            chunk = fin.read(CHUNK)
            if not chunk:
                break
            if chunk.count(0) == len(chunk):
                fout.seek(len(chunk), os.SEEK_CUR)
            else:
                fout.write(chunk)
        fout.truncate(size)


class MinimalDriver(base.VolumeDriver):
    VERSION = '0.1.0'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.root = None

    def do_setup(self, context):
        self.root = tempfile.mkdtemp(prefix='minimal-driver-')

    def check_for_setup_error(self):
        if not self.root or not os.path.isdir(self.root):
            raise RuntimeError('no scratch directory')

    def _path(self, resource):
        return os.path.join(self.root, resource['name'])

    def create_volume(self, volume):
        with open(self._path(volume), 'ab') as f:
            f.truncate(volume['size'] * GiB)
        return {'provider_location': self._path(volume)}

    def delete_volume(self, volume):
        if os.path.exists(self._path(volume)):
            os.unlink(self._path(volume))

    def create_snapshot(self, snapshot):
        source = os.path.join(self.root, 'volume-%s' % snapshot['volume_id'])
        _copy_sparse(source, self._path(snapshot),
                     snapshot['volume_size'] * GiB)

    def delete_snapshot(self, snapshot):
        if os.path.exists(self._path(snapshot)):
            os.unlink(self._path(snapshot))

    def create_volume_from_snapshot(self, volume, snapshot):
        _copy_sparse(self._path(snapshot), self._path(volume),
                     volume['size'] * GiB)
        return {'provider_location': self._path(volume)}

    def create_cloned_volume(self, volume, src_vref):
        _copy_sparse(self._path(src_vref), self._path(volume),
                     volume['size'] * GiB)
        return {'provider_location': self._path(volume)}

    def extend_volume(self, volume, new_size):
        os.truncate(self._path(volume), new_size * GiB)

    def create_export(self, context, volume, connector):
        return None

    def ensure_export(self, context, volume):
        return None

    def remove_export(self, context, volume):
        return None

    def initialize_connection(self, volume, connector, **kwargs):
        return {'driver_volume_type': 'local',
                'data': {'device_path': self._path(volume)}}

    def terminate_connection(self, volume, connector, **kwargs):
        return None

    def _update_volume_stats(self):
        fs = os.statvfs(self.root)
        self._stats = {
            'volume_backend_name': self.configuration.safe_get(
                'volume_backend_name') or 'minimal',
            'vendor_name': 'Minimal', 'driver_version': self.VERSION,
            'storage_protocol': 'local', 'reserved_percentage': 0,
            'total_capacity_gb': fs.f_blocks * fs.f_frsize // GiB,
            'free_capacity_gb': fs.f_bavail * fs.f_frsize // GiB}

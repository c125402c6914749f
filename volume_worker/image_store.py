"""The embedded image store: image files with JSON metadata in one directory.

``<path>/<id>.img`` holds an image's bytes, ``<path>/<id>.json`` its
metadata (see ``drivers.image_service``), ``<path>/staging/<id>.part`` an
upload in progress. Every file is written under a temporary name and
renamed into place, so a crash leaves no half-written image under its
final name; deleting an image removes its partial upload too. Images are
named by UUID only (a name never becomes a path).

An operator's ``import`` holds ``<path>/staging/<id>.import`` locked
(``flock``) while it runs. One killed midway leaves that file unlocked:
``sweep_abandoned_imports`` (run by the next import, by ``list`` and at the
worker's start-up) removes such an image with its partial files, or only
the lock file when the import had finished. (Uploads by the worker are
cleaned up by its own journal.)
"""

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid

from oslo_utils import uuidutils

from drivers import exception
from drivers import fileops
from drivers import image_service
from drivers import qemu_img

BLOCK = 4 << 20
IMPORT_LOCK = '.import'

QUEUED = 'queued'
SAVING = 'saving'
ACTIVE = 'active'


def from_conf(conf):
    """The image service the worker's configuration names."""
    return LocalImageStore(conf.image_store.path)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class LocalImageStore(image_service.ImageService):

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.staging = os.path.join(self.path, 'staging')

    def _ensure_dirs(self):
        os.makedirs(self.staging, mode=0o750, exist_ok=True)

    def _file(self, image_id, suffix):
        if not uuidutils.is_uuid_like(image_id):
            raise exception.ImageNotFound(image_id=image_id)
        return os.path.join(self.path, '%s.%s' % (image_id, suffix))

    # -- reading ----------------------------------------------------------

    def show(self, context, image_id):
        try:
            with open(self._file(image_id, 'json')) as f:
                return json.load(f)
        except FileNotFoundError:
            raise exception.ImageNotFound(image_id=image_id) from None

    def list(self, context):
        self.sweep_abandoned_imports()
        images = []
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return images
        for name in names:
            if name.endswith('.json') and not name.startswith('.'):
                try:
                    images.append(self.show(context, name[:-5]))
                except (exception.ImageNotFound, ValueError):
                    continue  # deleted meanwhile, or not one of ours
        return sorted(images, key=lambda m: (m.get('created_at') or '',
                                             m['id']))

    def local_path(self, context, image_id):
        meta = self.show(context, image_id)
        if meta.get('status') != ACTIVE:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason='it is %s, not active'
                % meta.get('status'))
        return self._file(image_id, 'img')

    def is_verified(self, context, image_id):
        """Whether the image's file is the one its checksum was computed
        from: same inode, size, mtime and ctime (no write, truncation or
        replacement since; ctime cannot be set back from user space)."""
        meta = self.show(context, image_id)
        try:
            return meta.get('file_stat') == _file_stat(
                self._file(image_id, 'img'))
        except FileNotFoundError:
            return False

    def get_location(self, context, image_id):
        path = self.local_path(context, image_id)
        url = 'file://' + path
        return url, [{'url': url, 'metadata': {}}]

    def download(self, context, image_id, data):
        meta = self.show(context, image_id)
        digest = hashlib.sha256()
        with open(self.local_path(context, image_id), 'rb') as source:
            for block in iter(lambda: source.read(BLOCK), b''):
                digest.update(block)
                data.write(block)
        if meta.get('checksum') and digest.hexdigest() != meta['checksum']:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason='checksum mismatch: sha256 %s, '
                'expected %s' % (digest.hexdigest(), meta['checksum']))

    # -- writing ----------------------------------------------------------

    def create(self, context, image_meta):
        image_id = image_meta.get('id') or str(uuid.uuid4())
        try:
            return self.show(context, image_id)
        except exception.ImageNotFound:
            pass
        disk_format = image_meta.get('disk_format') or 'raw'
        if disk_format not in qemu_img.FORMATS:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason='disk format %r is not one of %s'
                % (disk_format, ', '.join(qemu_img.FORMATS)))
        meta = {'id': image_id, 'name': image_meta.get('name'),
                'status': QUEUED, 'disk_format': disk_format,
                'container_format': 'bare', 'size': None,
                'virtual_size': None, 'checksum': None,
                'properties': dict(image_meta.get('properties') or {}),
                'created_at': _now(), 'updated_at': None}
        self._ensure_dirs()
        self._write_meta(meta)
        return meta

    def staging_path(self, context, image_id):
        self._ensure_dirs()
        return os.path.join(self.staging, '%s.part' % self._image_uuid(
            image_id))

    def _image_uuid(self, image_id):
        self._file(image_id, 'json')  # refuses anything but a UUID
        return image_id

    def update(self, context, image_id, image_meta, data):
        meta = self.show(context, image_id)
        meta.update({k: v for k, v in (image_meta or {}).items()
                     if k in ('name', 'disk_format', 'properties')})
        meta['status'] = SAVING
        self._write_meta(meta)
        staged = self.staging_path(context, image_id)
        if isinstance(data, str):
            if os.path.abspath(data) != staged:
                _take_over(data, staged)
        else:
            with open(staged, 'wb') as out:
                shutil.copyfileobj(data, out, BLOCK)
                out.flush()
                os.fsync(out.fileno())
        try:
            found = qemu_img.inspect(staged, meta['disk_format'], image_id)
        except exception.ImageUnacceptable:
            _remove(staged)
            raise
        meta.update(size=os.path.getsize(staged),
                    virtual_size=found['virtual-size'],
                    checksum=qemu_img.sha256_of(staged), status=ACTIVE,
                    updated_at=_now())
        final = self._file(image_id, 'img')
        os.replace(staged, final)
        meta['file_stat'] = _file_stat(final)
        self._write_meta(meta)
        fileops.fsync_dir(self.path)
        return meta

    def delete(self, context, image_id):
        if not uuidutils.is_uuid_like(image_id):
            return
        for path in (self._file(image_id, 'json'), self._file(image_id, 'img'),
                     os.path.join(self.staging, '%s.part' % image_id)):
            _remove(path)

    def import_file(self, context, path, name, disk_format='raw',
                    image_id=None):
        """Copy the file at ``path`` into the store as a new active image.

        Holes stay holes; on a btrfs/XFS store the copy shares the file's
        extents when it is on the same filesystem.
        """
        self.sweep_abandoned_imports()
        image_id = image_id or str(uuid.uuid4())
        self._image_uuid(image_id)
        with self._importing(image_id):
            meta = self.create(context, {'id': image_id, 'name': name,
                                         'disk_format': disk_format})
            try:
                staged = self.staging_path(context, meta['id'])
                method = (fileops.CLONE_REFLINK
                          if fileops.probe_reflink(self.staging)
                          else fileops.CLONE_COPY)
                try:
                    fileops.clone_file(path, staged, os.path.getsize(path),
                                       method, mode=0o640)
                except OSError:
                    if method == fileops.CLONE_COPY:
                        raise
                    fileops.clone_file(path, staged, os.path.getsize(path),
                                       fileops.CLONE_COPY, mode=0o640)
                return self.update(context, meta['id'], {}, staged)
            except BaseException:
                self._remove_partial(meta['id'])
                raise

    @contextlib.contextmanager
    def _importing(self, image_id):
        """Hold the image's import lock file while the block runs."""
        self._ensure_dirs()
        path = os.path.join(self.staging, image_id + IMPORT_LOCK)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
            os.close(fd)  # a sweep removed it meanwhile: take a new one
        try:
            yield
        finally:
            _remove(path)
            os.close(fd)

    def sweep_abandoned_imports(self):
        """Clean up after imports killed midway; the ids of their images.

        An import lock file nobody holds belongs to a dead import: its
        image is removed unless it became active (the import had
        finished), with its partial and temporary files.
        """
        try:
            names = os.listdir(self.staging)
        except FileNotFoundError:
            return []
        swept = []
        for name in names:
            image_id = name[:-len(IMPORT_LOCK)]
            if not (name.endswith(IMPORT_LOCK) and
                    uuidutils.is_uuid_like(image_id)):
                continue
            path = os.path.join(self.staging, name)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # an import running now
                if not _same_file(fd, path):
                    continue
                try:
                    finished = self.show(None, image_id).get('status') == \
                        ACTIVE
                except (exception.ImageNotFound, ValueError):
                    finished = False
                if not finished:
                    self._remove_partial(image_id)
                    swept.append(image_id)
                _remove(path)
            finally:
                os.close(fd)
        return swept

    def _remove_partial(self, image_id):
        self.delete(None, image_id)
        fileops.remove_stale_temps(os.path.join(self.staging,
                                                '%s.part' % image_id))
        _remove(os.path.join(self.path, '.%s.json.tmp' % image_id))

    def _write_meta(self, meta):
        final = self._file(meta['id'], 'json')
        temp = os.path.join(self.path, '.%s.json.tmp' % meta['id'])
        with open(temp, 'w') as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, final)


def _same_file(fd, path):
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _file_stat(path):
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _take_over(source, target):
    """Move a finished file into the staging area (copy across filesystems)."""
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copyfile(source, target)
        os.unlink(source)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

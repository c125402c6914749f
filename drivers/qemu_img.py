"""Inspecting and converting disk images with ``qemu-img``, refusing hostile ones.

An image is looked at only with the format it claims (``-f`` given: qemu
never probes), under CPU and memory limits, and refused before any byte of
it is written anywhere when it is not what a volume may hold: a format
other than raw or qcow2, a header that does not parse, a qcow2 with a
backing file or an external data file, a "raw" image whose first bytes are
another format's header, a virtual size larger than the volume.
"""

import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile

from drivers import exception
from drivers import throttle as throttling

FORMATS = ('raw', 'qcow2')

# As Cinder limits qemu-img info: a crafted header cannot make it spin or
# balloon (set in the child itself: no wrapper process to start).
INFO_CPU_SECONDS = 30
INFO_MEMORY = 1 << 30

# Headers of formats a "raw" image must not start with: qemu would read
# them as bytes, a consumer probing the volume might not.
_MAGICS = ((0, b'QFI\xfb', 'qcow2'), (0, b'KDMV', 'vmdk'),
           (0, b'conectix', 'vpc'), (0, b'vhdxfile', 'vhdx'),
           (0, b'LUKS\xba\xbe', 'luks'), (0, b'QEVM', 'qed'),
           (0x40, b'\x7f\x10\xda\xbe', 'vdi'))

_PROGRESS = re.compile(rb'\((\d+(?:\.\d+)?)/100%\)')


def _refuse(image_id, reason):
    return exception.ImageUnacceptable(image_id=image_id, reason=reason)


def info(path, fmt, image_id=None):
    """``qemu-img info --output=json`` of ``path`` read as ``fmt``."""
    proc = subprocess.run(
        ['qemu-img', 'info', '--output=json', '-f', fmt, path],
        capture_output=True, stdin=subprocess.DEVNULL,
        preexec_fn=_limited, timeout=INFO_CPU_SECONDS * 2)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode('utf-8', 'replace')
        detail = detail.strip()
        raise _refuse(image_id or path, 'not a readable %s image: %s'
                      % (fmt, detail.splitlines()[-1] if detail else '?'))
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise _refuse(image_id or path, 'qemu-img info gave no JSON')


def _limited():
    """In the child: qemu-img info under the limits, dying with the worker."""
    resource.setrlimit(resource.RLIMIT_CPU,
                       (INFO_CPU_SECONDS, INFO_CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (INFO_MEMORY, INFO_MEMORY))
    _die_with_parent()


def inspect(path, fmt, image_id, max_virtual_size=None):
    """Check that ``path`` is a safe ``fmt`` image; return its info.

    Raises ``ImageUnacceptable`` saying why it is not.
    """
    if fmt not in FORMATS:
        raise _refuse(image_id, 'disk format %r is not one of %s'
                      % (fmt, ', '.join(FORMATS)))
    if fmt == 'raw':
        with open(path, 'rb') as f:
            head = f.read(0x44)
        for offset, magic, other in _MAGICS:
            if head[offset:offset + len(magic)] == magic:
                raise _refuse(image_id, 'it claims to be raw but starts with '
                              'a %s header' % other)
    data = info(path, fmt, image_id)
    if data.get('format') != fmt:
        raise _refuse(image_id, 'qemu-img reads it as %s, not %s'
                      % (data.get('format'), fmt))
    if data.get('backing-filename') or data.get('full-backing-filename'):
        raise _refuse(image_id, 'it has a backing file (%s)'
                      % data.get('backing-filename'))
    specific = (data.get('format-specific') or {}).get('data') or {}
    if specific.get('data-file'):
        raise _refuse(image_id, 'it has an external data file (%s)'
                      % specific['data-file'])
    if specific.get('corrupt'):
        raise _refuse(image_id, 'its qcow2 header is marked corrupt')
    size = data.get('virtual-size')
    if not isinstance(size, int) or size < 0:
        raise _refuse(image_id, 'it has no virtual size')
    if max_virtual_size is not None and size > max_virtual_size:
        raise _refuse(image_id, 'its virtual size of %d bytes is larger '
                      'than the volume (%d bytes)' % (size, max_virtual_size))
    return data


def _die_with_parent():
    """In the child: be killed when the worker dies (kill -9 included)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def convert(src, src_fmt, dst, dst_fmt, total_bytes=None, throttle=None,
            progress=None, target_exists=False, image_id=None):
    """``qemu-img convert`` ``src`` onto ``dst``; the target is flushed.

    ``target_exists``: write into ``dst`` as it is (a volume's device,
    ``-n``) rather than creating it. ``throttle`` gives the process its
    share of the bandwidth limit (``-r``); ``progress(nbytes)`` receives
    the bytes done as qemu-img reports its percent (of ``total_bytes``).
    The process dies with the worker.
    """
    cmd = ['-f', src_fmt, '-O', dst_fmt] + (['-n'] if target_exists else [])
    _convert(cmd, [src, dst], total_bytes, throttle, progress,
             image_id or src)


def convert_to_luks(src, src_fmt, device, secret_file, total_bytes=None,
                    throttle=None, progress=None, image_id=None):
    """``convert`` into the LUKS container already on ``device``
    (``create_luks``), unlocked with the passphrase in ``secret_file``:
    only ciphertext reaches the device."""
    target = ('driver=luks,key-secret=sec0,file.driver=file,'
              'file.filename=%s' % device.replace(',', ',,'))
    cmd = ['--object', 'secret,id=sec0,file=%s' % secret_file, '-n',
           '-f', src_fmt, '--target-image-opts']
    _convert(cmd, [src, target], total_bytes, throttle, progress,
             image_id or src)


def _convert(options, paths, total_bytes, throttle, progress, what):
    throttle = throttle or throttling.UNLIMITED
    with throttle.copy(), tempfile.TemporaryFile() as errors:
        cmd = (['qemu-img', 'convert', '-p'] + options +
               throttle.qemu_img_args() + paths)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors,
                                stdin=subprocess.DEVNULL, close_fds=True,
                                preexec_fn=_die_with_parent)
        _follow(proc.stdout, total_bytes, progress)
        rc = proc.wait()
        if rc != 0:
            errors.seek(0)
            detail = errors.read().decode('utf-8', 'replace').strip()
            raise exception.ImageCopyFailure(
                image_id=what,
                reason='qemu-img convert exited with %d: %s'
                % (rc, detail.splitlines()[-1] if detail else '?'))


def luks_options(encryption):
    """qemu's LUKS options from a volume type's encryption spec (Cinder's
    keys: ``provider`` luks, ``cipher`` like aes-xts-plain64, ``key_size``
    in bits)."""
    provider = (encryption.get('provider') or 'luks').lower()
    if provider not in ('luks', 'luksencryptor',
                        'nova.volume.encryptors.luks.luksencryptor'):
        raise exception.InvalidVolume(
            reason='encryption provider %r: only luks is supported'
            % encryption.get('provider'))
    cipher = encryption.get('cipher') or 'aes-xts-plain64'
    parts = cipher.split('-')
    if len(parts) != 3:
        raise exception.InvalidVolume(
            reason='cipher %r is not ALG-MODE-IVGEN' % cipher)
    key_size = int(encryption.get('key_size') or 256)
    # The passphrase is a random key, not a password: PBKDF2 iterations
    # would only slow every open (qemu's default is 2 s of CPU).
    return {'cipher-alg': '%s-%d' % (parts[0], key_size),
            'cipher-mode': parts[1], 'ivgen-alg': parts[2],
            'iter-time': '100'}


def _luks_args(secret_file, options):
    opts = ','.join(['key-secret=sec0'] + ['%s=%s' % item for item in
                                           sorted(options.items())])
    return ['--object', 'secret,id=sec0,file=%s' % secret_file, '-o', opts]


# Room kept for the LUKS header (2 MiB for aes-256-xts with qemu's 8 key
# slots; LUKS2 headers take up to 16 MiB): the payload is the rest.
LUKS_HEADER_RESERVE = 16 << 20


def create_luks(device, payload_bytes, secret_file, options, attempts=3):
    """Format ``device`` as a LUKS container of ``payload_bytes``.

    qemu times PBKDF2 on the CPU clock to choose its iterations, and on a
    busy machine that measurement can come out empty ("Unable to get
    accurate CPU usage"): such a run is tried again.
    """
    for _attempt in range(attempts):
        proc = subprocess.run(
            ['qemu-img', 'create', '-f', 'luks'] +
            _luks_args(secret_file, options) + [device, str(payload_bytes)],
            capture_output=True, preexec_fn=_die_with_parent)
        if b'accurate CPU usage' not in proc.stderr:
            break
    if proc.returncode != 0:
        raise exception.VolumeBackendAPIException(
            data='formatting %s as LUKS failed: %s'
            % (device, proc.stderr.decode('utf-8', 'replace').strip()))


def _follow(stream, total_bytes, progress):
    done = 0
    pending = b''
    while True:
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        if progress is None or not total_bytes:
            continue
        pending += chunk
        matches = list(_PROGRESS.finditer(pending))
        if matches:
            now = int(float(matches[-1].group(1)) * total_bytes / 100)
            if now > done:
                progress(now - done)
                done = now
            pending = pending[matches[-1].end():]
    stream.close()


_SHA256_SCRIPT = '''
import hashlib, sys
digest = hashlib.sha256()
with open(sys.argv[1], 'rb') as f:
    for block in iter(lambda: f.read(4 << 20), b''):
        digest.update(block)
print(digest.hexdigest())
'''


class Checksum:
    """sha256 of a file computed by a process of its own, beside a copy.

    ``start()`` before the copy, ``verify()`` after it (raises
    ``ImageUnacceptable`` on a mismatch): the file is read twice, but in
    parallel, from the page cache for the second reader.
    """

    def __init__(self, path, expected, image_id):
        self.path = path
        self.expected = (expected or '').lower()
        self.image_id = image_id
        self.proc = None

    def start(self):
        if self.expected:
            # Python's hashlib (OpenSSL): several times coreutils' sha256sum.
            self.proc = subprocess.Popen(
                [sys.executable, '-c', _SHA256_SCRIPT, self.path],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        return self

    def verify(self):
        if self.proc is None:
            return
        out = self.proc.stdout.read()
        self.proc.stdout.close()
        if self.proc.wait() != 0:
            raise _refuse(self.image_id, 'its file could not be read to '
                          'verify its checksum')
        actual = out.strip().decode('ascii', 'replace')
        if actual != self.expected:
            raise _refuse(self.image_id, 'checksum mismatch: sha256 %s, '
                          'expected %s' % (actual, self.expected))

    def cancel(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.proc.stdout.close()


def sha256_of(path, block_size=4 << 20):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(block_size), b''):
            digest.update(block)
    return digest.hexdigest()

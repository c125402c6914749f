"""Keys of encrypted volumes, behind castellan's ``KeyManager`` interface.

``API(conf)`` is castellan's own loader: ``[key_manager] backend`` names
``barbican`` or ``vault`` (castellan's backends, configured in their own
sections) or a class; the default here is ``ConfKeyManager``, one fixed key
from ``[key_manager] fixed_key`` for every volume (as Cinder's config key
manager: for tests and single hosts; anyone who reads the config reads
every volume). ``DirectoryKeyManager`` keeps a key of its own per volume as
files of ``[key_manager] key_directory`` (tests and single hosts too: the
keys sit on the host, readable by root).
"""

import os
import secrets
import uuid

from castellan.common import exception as castellan_exception
from castellan.common.objects import symmetric_key
from castellan.key_manager import key_manager
from oslo_utils import uuidutils
from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

CONF_KEY_MANAGER = 'volume_worker.keymgr.ConfKeyManager'
DIRECTORY_KEY_MANAGER = 'volume_worker.keymgr.DirectoryKeyManager'
FIXED_KEY_ID = '00000000-0000-0000-0000-000000000000'

opts = [
    cfg.StrOpt('fixed_key', secret=True,
               help='ConfKeyManager: the one key of every encrypted volume, '
                    'in hex (64 digits for a 256-bit key). Unset: no '
                    'encrypted volume can be created.'),
    cfg.StrOpt('key_directory',
               help='DirectoryKeyManager: the directory holding one file per '
                    'key (mode 0600), created when missing.'),
]


def register_opts(conf):
    from castellan import options as castellan_options
    castellan_options.set_defaults(conf, backend=CONF_KEY_MANAGER)
    conf.register_opts(opts, group='key_manager')


def API(conf):
    """The configured key manager (castellan's loader)."""
    from castellan import key_manager as castellan_key_manager
    register_opts(conf)
    return castellan_key_manager.API(conf)


class ConfKeyManager(key_manager.KeyManager):
    """One fixed symmetric key from the configuration, for every volume."""

    def __init__(self, configuration):
        super().__init__(configuration)
        configuration.register_opts(opts, group='key_manager')
        self.conf = configuration

    def _key(self):
        hex_key = self.conf.key_manager.fixed_key
        if not hex_key:
            raise castellan_exception.KeyManagerError(
                reason='[key_manager] fixed_key is not set')
        try:
            raw = bytes.fromhex(hex_key)
        except ValueError:
            raise castellan_exception.KeyManagerError(
                reason='[key_manager] fixed_key is not hex') from None
        return symmetric_key.SymmetricKey('AES', len(raw) * 8, raw)

    def create_key(self, context, algorithm='AES', length=256,
                   expiration=None, name=None):
        key = self._key()
        if length and key.bit_length != length:
            raise castellan_exception.KeyManagerError(
                reason='the fixed key has %d bits, not %d'
                % (key.bit_length, length))
        return FIXED_KEY_ID

    def create_key_pair(self, context, algorithm, length, expiration=None,
                        name=None):
        raise NotImplementedError('the config key manager keeps one '
                                  'symmetric key')

    def store(self, context, managed_object, expiration=None):
        if managed_object.get_encoded() != self._key().get_encoded():
            raise castellan_exception.KeyManagerError(
                reason='the config key manager stores only its fixed key')
        return FIXED_KEY_ID

    def get(self, context, managed_object_id, metadata_only=False):
        if managed_object_id != FIXED_KEY_ID:
            raise castellan_exception.ManagedObjectNotFoundError(
                uuid=managed_object_id)
        return self._key()

    def delete(self, context, managed_object_id, force=False):
        # The fixed key serves every volume: it is never deleted.
        if managed_object_id != FIXED_KEY_ID:
            raise castellan_exception.ManagedObjectNotFoundError(
                uuid=managed_object_id)

    def list(self, context, object_type=None, metadata_only=False):
        return [self._key()] if self.conf.key_manager.fixed_key else []

    def add_consumer(self, context, managed_object_id, consumer_data):
        pass

    def remove_consumer(self, context, managed_object_id, consumer_data):
        pass


class DirectoryKeyManager(key_manager.KeyManager):
    """Symmetric keys of their own, one file each in ``key_directory``.

    A key file is named by the key's id and holds its bytes in hex; it is
    written under a temporary name and renamed, so a key is there whole or
    not at all.
    """

    def __init__(self, configuration):
        super().__init__(configuration)
        configuration.register_opts(opts, group='key_manager')
        directory = configuration.key_manager.key_directory
        if not directory:
            raise castellan_exception.KeyManagerError(
                reason='[key_manager] key_directory is not set')
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory

    def _path(self, key_id):
        if not uuidutils.is_uuid_like(key_id):
            raise castellan_exception.ManagedObjectNotFoundError(uuid=key_id)
        return os.path.join(self.directory, str(uuid.UUID(key_id)))

    def _save(self, raw):
        key_id = str(uuid.uuid4())
        path = self._path(key_id)
        temp = path + '.tmp'
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(raw.hex())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        return key_id

    def create_key(self, context, algorithm='AES', length=256,
                   expiration=None, name=None):
        if length % 8 or not 128 <= length <= 512:
            raise castellan_exception.KeyManagerError(
                reason='a key of %r bits is not made here' % length)
        return self._save(secrets.token_bytes(length // 8))

    def create_key_pair(self, context, algorithm, length, expiration=None,
                        name=None):
        raise NotImplementedError('the directory key manager keeps '
                                  'symmetric keys')

    def store(self, context, managed_object, expiration=None):
        return self._save(managed_object.get_encoded())

    def get(self, context, managed_object_id, metadata_only=False):
        try:
            with open(self._path(managed_object_id)) as f:
                raw = bytes.fromhex(f.read())
        except FileNotFoundError:
            raise castellan_exception.ManagedObjectNotFoundError(
                uuid=managed_object_id) from None
        return symmetric_key.SymmetricKey('AES', len(raw) * 8, raw)

    def delete(self, context, managed_object_id, force=False):
        try:
            os.unlink(self._path(managed_object_id))
        except FileNotFoundError:
            raise castellan_exception.ManagedObjectNotFoundError(
                uuid=managed_object_id) from None

    def list(self, context, object_type=None, metadata_only=False):
        return [self.get(context, name) for name in os.listdir(self.directory)
                if uuidutils.is_uuid_like(name)]

    def add_consumer(self, context, managed_object_id, consumer_data):
        pass

    def remove_consumer(self, context, managed_object_id, consumer_data):
        pass

"""Encryption keys of volumes: made with the volume, copied for a copy, deleted with it.

A volume of an encrypted type gets its own key from the driver's key manager
(castellan's interface) when it is created, empty or from an image; its data
is formatted (LUKS) by whoever first writes it: the image copy here, or the
consumer's os-brick encryptor on first attach. A volume made from a snapshot
or as a clone holds the same ciphertext as its source, so it needs the same
key bytes, but under a key id of its own (as Cinder does: a key is deleted
with its volume, and a shared id would die with the first of them). A
snapshot uses its volume's key: a volume with snapshots cannot be deleted.
A copy whose type's encryption differs from its source's is refused
(re-encryption on copy is not done). Deleting a volume deletes its key;
unmanaging one keeps it (the data stays on the backend).
"""

from castellan.common import exception as castellan_exception
from oslo_log import log as logging

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common

LOG = logging.getLogger(__name__)

# Fields of an encryption spec that say nothing of how data is encrypted.
_NOT_THE_CIPHER = ('id', 'volume_type_id', 'encryption_id', 'created_at',
                   'updated_at', 'deleted_at', 'deleted')


def encryption_of(volume):
    """The volume type's encryption spec, or None for a plain volume."""
    if not volume.volume_type_id:
        return None
    volume_type = volume.volume_type
    return (volume_type.encryption or None) if volume_type else None


def _cipher_of(encryption):
    if not encryption:
        return None
    return {k: v for k, v in encryption.items() if k not in _NOT_THE_CIPHER}


def check_copy(volume, source_volume, source_name):
    """The key a copy of ``source_volume`` must copy (None: plain).

    Refused when the new volume's encryption differs from its source's, or
    when an encrypted source has no key.
    """
    wanted, found = encryption_of(volume), encryption_of(source_volume)
    if _cipher_of(wanted) != _cipher_of(found):
        raise exception.InvalidInput(
            reason='volume %s and its source %s differ in encryption (%s '
                   'against %s); a copy keeps its source\'s'
                   % (volume.id, source_name,
                      'encrypted' if wanted else 'plain',
                      'encrypted' if found else 'plain'))
    if wanted and not source_volume.encryption_key_id:
        raise exception.InvalidInput(
            reason='source %s is of an encrypted type but has no key'
                   % source_name)
    return source_volume.encryption_key_id if wanted else None


def snapshot_volume(snapshot):
    """The volume a snapshot was taken of (its key is the snapshot's)."""
    from volume_worker import objects
    return objects.Volume.get_by_id(snapshot.volume_id, read_deleted=True)


def _key_manager(driver, volume):
    key_manager = getattr(driver, 'key_manager', None)
    if key_manager is None:
        raise exception.InvalidInput(
            reason='volume type %s is encrypted and this worker has no key '
                   'manager' % volume.volume_type_id)
    return key_manager


class CreateKey(common.VolumeTask):
    """A key for a volume of an encrypted type: a new one, or a copy of
    ``source_key_id`` (the source's, when the volume is a copy).

    The key's id is saved on the volume at once (a write only encrypted
    volumes pay; a plain create has no journal checkpoint for it), so a
    run again after a crash finds it and makes no second key. A key the
    caller chose is used as it is. Revert deletes a key it made.
    """

    idempotent = True
    default_provides = 'key_update'

    def execute(self, context, driver, volume, source_key_id=None):
        encryption = encryption_of(volume)
        if not encryption or volume.encryption_key_id:
            return {}
        key_manager = _key_manager(driver, volume)
        if source_key_id:
            key = common.call_driver(key_manager.get, context, source_key_id)
            key_id = common.call_driver(key_manager.store, context, key)
        else:
            key_id = common.call_driver(
                key_manager.create_key, context, 'AES',
                int(encryption.get('key_size') or 256))
        volume.encryption_key_id = key_id
        volume.save()
        return {'encryption_key_id': key_id}

    def revert(self, context, driver, volume, result=None, **kwargs):
        key_id = (result or {}).get('encryption_key_id') if isinstance(
            result, dict) else None
        if not key_id:
            return
        try:
            common.call_driver(driver.key_manager.delete, context, key_id)
            volume.encryption_key_id = None
            volume.save()
        except Exception:
            LOG.exception('Could not delete key %s', key_id)


class DeleteKey(common.VolumeTask):
    """Delete the deleted volume's key (not when it is only unmanaged).

    Cannot be undone: no revert. A key already gone is deleted; another
    failure fails the delete (the volume ``error_deleting``), and a repeated
    delete tries again.
    """

    idempotent = True

    def execute(self, context, driver, volume, unmanage_only=False):
        key_id = volume.encryption_key_id
        if unmanage_only or not key_id:
            return
        key_manager = getattr(driver, 'key_manager', None)
        if key_manager is None:
            raise exception.InvalidInput(
                reason='volume %s has key %s and this worker has no key '
                       'manager to delete it' % (volume.id, key_id))
        if db.volume_key_users(key_id, volume.id):
            # Another volume names the same key (the fixed key of the
            # config key manager, or volumes older than key copies).
            LOG.info('Key %s of volume %s is used by other volumes: kept',
                     key_id, volume.id)
            return
        try:
            common.call_driver(key_manager.delete, context, key_id)
        except castellan_exception.ManagedObjectNotFoundError:
            pass

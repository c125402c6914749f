"""Checks every RPC endpoint runs on its arguments before anything changes."""

import functools
import inspect
import json
import uuid

import oslo_messaging as messaging
from oslo_log import log as logging

from volume_worker import exception

LOG = logging.getLogger(__name__)


def endpoint(fn=None, read_only=False):
    """Make an RPC method reject bad requests with one clear error.

    Arguments that do not fit the method's signature, and the worker's and
    drivers' own exceptions, become an ``ExpectedException``: a caller of
    ``call`` gets the error itself, a ``cast`` leaves one log line and
    nothing changed. Anything else is a bug: oslo.messaging logs it with its
    traceback and returns it to a caller. Only methods so marked are
    callable over the wire (the server's access policy is explicit).
    """
    if fn is None:
        return functools.partial(endpoint, read_only=read_only)
    signature = inspect.signature(fn)
    log = LOG.debug if read_only else LOG.warning

    @functools.wraps(fn)
    def wrapper(self, context, **kwargs):
        try:
            try:
                signature.bind(self, context, **kwargs)
            except TypeError as exc:
                raise exception.InvalidInput(
                    reason='%s(): %s' % (fn.__name__, exc))
            return fn(self, context, **kwargs)
        except exception.EXPECTED as exc:
            error = exc
            expected = messaging.ExpectedException()  # captures exc_info
        log('%s rejected: %s', fn.__name__, error)
        raise expected
    wrapper.exposed = True  # oslo.messaging's ExplicitRPCAccessPolicy
    return wrapper


def check_uuid(value, what):
    if not isinstance(value, str):
        raise exception.InvalidInput(reason='%s must be a UUID string, not %s'
                                     % (what, type(value).__name__))
    if len(value) > 45:  # longer than any UUID form: no parsing megabytes
        raise exception.InvalidInput(reason='%s %r is not a UUID'
                                     % (what, value[:64]))
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise exception.InvalidInput(reason='%s %r is not a UUID'
                                     % (what, value[:64]))
    if str(parsed) != value.lower():
        raise exception.InvalidInput(reason='%s %r is not in canonical UUID '
                                     'form' % (what, value[:64]))
    return value


def check_size(size, max_size):
    if isinstance(size, bool) or not isinstance(size, int):
        raise exception.InvalidInput(reason='size must be a whole number of '
                                     'GiB, not %r' % (size,))
    if size < 1:
        raise exception.InvalidInput(reason='size must be at least 1 GiB, '
                                     'not %d' % size)
    if size > max_size:
        raise exception.InvalidInput(reason='size %d GiB exceeds the limit '
                                     'of %d GiB' % (size, max_size))
    return size


def check_metadata(metadata, max_bytes):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise exception.InvalidInput(reason='metadata must be a dict')
    if len(json.dumps(metadata)) > max_bytes:
        raise exception.InvalidInput(reason='metadata exceeds %d bytes'
                                     % max_bytes)
    return metadata


def check_object(obj, cls, what):
    """``obj`` is a ``cls`` that carries its id.

    Other fields an endpoint reads and the sender left unset are refused
    when read (``InvalidInput`` naming the field: the serializer marks
    objects from the wire so).
    """
    if not isinstance(obj, cls):
        raise exception.InvalidInput(reason='%s must be a %s object, not %s'
                                     % (what, cls.obj_name(),
                                        type(obj).__name__))
    if 'id' in cls.fields and not obj.obj_attr_is_set('id'):
        raise exception.InvalidInput(reason='%s has no id' % what)
    return obj


def check_limit(limit, maximum=1000):
    if limit is None:
        return maximum
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise exception.InvalidInput(reason='limit must be a positive integer')
    return min(limit, maximum)


def check_bool(value, what):
    if not isinstance(value, bool):
        raise exception.InvalidInput(reason='%s must be true or false, not %r'
                                     % (what, value))
    return value


MAX_NAME = 255
MAX_DESCRIPTION = 4096


def check_text(value, what, limit):
    if not isinstance(value, str) or len(value) > limit or any(
            ord(c) < 32 or ord(c) == 127 for c in value):
        raise exception.InvalidInput(reason='%s must be printable text of at '
                                     'most %d characters' % (what, limit))
    return value


def check_names(resource):
    """Display names and descriptions: bounded, printable text.

    No control characters (C0, DEL, C1: NUL, escapes, line breaks that
    would forge log lines); a description may hold tabs and newlines.
    """
    for field, limit, allowed in (
            ('display_name', MAX_NAME, ''),
            ('display_description', MAX_DESCRIPTION, '\t\n')):
        if field not in resource.fields or not resource.obj_attr_is_set(
                field):
            continue
        value = getattr(resource, field)
        if value is None:
            continue
        if len(value) > limit:
            raise exception.InvalidInput(reason='%s is longer than %d '
                                         'characters' % (field, limit))
        if any(_is_control(c) for c in value if c not in allowed):
            raise exception.InvalidInput(reason='%s contains control '
                                         'characters' % field)


def _is_control(char):
    code = ord(char)
    return code < 32 or 127 <= code < 160 or code in (0x2028, 0x2029)


def check_filters(filters, allowed):
    """A copy of ``filters`` once every key is one of ``allowed``."""
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise exception.InvalidInput(reason='filters must be a dict')
    unknown = set(filters) - set(allowed)
    if unknown:
        raise exception.InvalidInput(
            reason='unknown filters: %s (allowed: %s)'
            % (', '.join(sorted(map(str, unknown))), ', '.join(allowed)))
    return dict(filters)


MAX_CONNECTOR_BYTES = 16384


def check_connector(connector):
    """A consumer's connector: a small JSON object of plain values."""
    if not isinstance(connector, dict):
        raise exception.InvalidConnector(reason='it must be a JSON object, '
                                         'not %s' % type(connector).__name__)
    try:
        size = len(json.dumps(connector))
    except (TypeError, ValueError) as exc:
        raise exception.InvalidConnector(reason=str(exc))
    if size > MAX_CONNECTOR_BYTES:
        raise exception.InvalidConnector(reason='it is %d bytes; at most %d'
                                         % (size, MAX_CONNECTOR_BYTES))
    for key, value in connector.items():
        if not isinstance(key, str):
            raise exception.InvalidConnector(reason='keys must be strings')
        if key in ('host', 'initiator', 'ip') and not (
                value is None or isinstance(value, str)):
            raise exception.InvalidConnector(reason='%s must be a string'
                                             % key)
        if isinstance(value, dict):
            raise exception.InvalidConnector(reason='%s: nested objects are '
                                             'not connector values' % key)
    return connector


MAX_REFERENCE_BYTES = 4096
MAX_MANAGED_LIST = 100000


def check_reference(existing_ref):
    """A manage request's reference to a backend object: a small JSON object."""
    if not isinstance(existing_ref, dict) or not existing_ref:
        raise exception.InvalidInput(reason='existing_ref must be a non-empty '
                                     'JSON object')
    try:
        size = len(json.dumps(existing_ref))
    except (TypeError, ValueError) as exc:
        raise exception.InvalidInput(reason='existing_ref: %s' % exc)
    if size > MAX_REFERENCE_BYTES:
        raise exception.InvalidInput(reason='existing_ref is %d bytes; at '
                                     'most %d' % (size, MAX_REFERENCE_BYTES))
    return existing_ref


def check_sort(sort_keys, sort_dirs, allowed_keys):
    """Sort keys and directions of a listing, defaulted and checked."""
    sort_keys = list(sort_keys or [allowed_keys[0]])
    sort_dirs = list(sort_dirs or ['asc'] * len(sort_keys))
    if not all(isinstance(k, str) and k in allowed_keys for k in sort_keys):
        raise exception.InvalidInput(reason='sort keys must be among %s'
                                     % ', '.join(allowed_keys))
    if len(sort_dirs) != len(sort_keys) or not all(
            d in ('asc', 'desc') for d in sort_dirs):
        raise exception.InvalidInput(reason='one sort direction (asc or '
                                     'desc) per sort key')
    return sort_keys, sort_dirs


MAX_MEMBERS = 1000


def check_uuid_list(values, what):
    """A list of ids (None: none), each a UUID, no repeats."""
    if values is None:
        return []
    if not isinstance(values, list) or len(values) > MAX_MEMBERS:
        raise exception.InvalidInput(reason='%s must be a list of at most %d '
                                     'ids' % (what, MAX_MEMBERS))
    for value in values:
        check_uuid(value, what)
    if len(set(values)) != len(values):
        raise exception.InvalidInput(reason='%s repeats an id' % what)
    return list(values)

"""tgtd's management protocol, spoken directly over its control socket.

``tgtadm`` is a thin client of this protocol: a fixed request header
(``struct tgtadm_req`` of tgt's ``usr/tgtadm.h``), then the parameters as
one ``key=value,key=value`` string, answered by an 8-byte header (error,
length) and the text tgtadm would print. Speaking it here keeps CHAP
secrets out of every process's arguments (``ps``, ``/proc/PID/cmdline``)
and needs no process per request.

tgtd serves only peers with its own uid and gid (``SO_PEERCRED``): for a
tgtd run by root the caller must be uid 0 and gid 0, which an unprivileged
worker reaches through ``drivers.privileged``.
"""

import socket
import struct

SOCKET_TEMPLATE = '/var/run/tgtd/socket.%d'

MODES = {'system': 0, 'target': 1, 'logicalunit': 2, 'portal': 3, 'lld': 4,
         'session': 5, 'connection': 6, 'account': 7}
OPS = {'new': 0, 'delete': 1, 'show': 2, 'bind': 3, 'unbind': 4,
       'update': 5, 'stats': 6, 'start': 7, 'stop': 8}

# tgt's enum tgtadm_errno, in its order, in our words.
SUCCESS = 0
NO_TARGET = 4
TARGET_EXISTS = 9
USER_EXISTS = 14
NO_USER = 15
_ERRORS = ('success', 'unknown error', 'out of memory', 'no such driver',
           'no such target', 'no such logical unit', 'no such session',
           'no such connection', 'no such binding', 'target exists',
           'logical unit exists', 'binding exists', 'ACL rule exists',
           'no such ACL rule', 'account exists', 'no such account',
           'too many accounts', 'invalid request',
           'target has an outgoing account already', 'target is active',
           'logical unit is active', 'driver is busy',
           'operation not supported', 'unknown parameter',
           'device prevents removal')

# mode, op, lld[64], len, tid, sid, lun, cid, host_no, device_type,
# ac_dir, pack, force: native sizes and alignment, as tgtadm sends it.
_REQUEST = struct.Struct('@ii64sIiQQIIIIII')
_RESPONSE = struct.Struct('@II')
_ALL_LUNS = (1 << 64) - 1
_MAX_REPLY = 64 << 20
_TIMEOUT = 30


class TgtdError(Exception):
    """tgtd refused a request (``code``) or could not be reached (None)."""

    def __init__(self, message, code=None):
        # Both in args: a privsep daemon rebuilds the exception from them.
        super().__init__(message, code)
        self.message = message
        self.code = code

    def __str__(self):
        return self.message


def describe(code):
    if 0 <= code < len(_ERRORS):
        return _ERRORS[code]
    return 'error %d' % code


def encode_params(params):
    """``key=value,...`` from ``(key, value)`` pairs; refuses separators.

    tgtd splits the string on commas and stops at a NUL: a value holding
    either would smuggle in another parameter.
    """
    parts = []
    for key, value in params:
        text = '%s=%s' % (key, value)
        if ',' in text or '\0' in text or '\n' in text:
            raise TgtdError('tgtd parameter %s holds a comma, newline or NUL'
                            % key)
        parts.append(text)
    return (','.join(parts) + '\0').encode() if parts else b''


def request(control_port, mode, op, tid=-1, lun=None, force=False,
            params=(), lld='iscsi', socket_path=None):
    """Send one request; return tgtd's text answer, raise TgtdError."""
    body = encode_params(params)
    header = _REQUEST.pack(
        MODES[mode], OPS[op], lld.encode(), _REQUEST.size + len(body),
        int(tid), 0, _ALL_LUNS if lun is None else int(lun), 0, 0, 0, 0, 0,
        1 if force else 0)
    path = socket_path or SOCKET_TEMPLATE % int(control_port)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_TIMEOUT)
        try:
            sock.connect(path)
            sock.sendall(header + body)
            reply = _read_exactly(sock, _RESPONSE.size)
        except OSError as exc:
            raise TgtdError('cannot talk to tgtd at %s: %s'
                            % (path, exc.strerror or exc)) from None
        if reply is None:
            raise TgtdError('tgtd at %s closed the connection without an '
                            'answer (it serves only its own uid and gid)'
                            % path)
        code, length = _RESPONSE.unpack(reply)
        if code != SUCCESS:
            raise TgtdError('tgtd refused to %s %s: %s'
                            % (op, mode, describe(code)), code)
        size = length - _RESPONSE.size
        if size <= 0:
            return ''
        if size > _MAX_REPLY:
            raise TgtdError('tgtd announced a %d-byte answer' % size)
        try:
            text = _read_exactly(sock, size)
        except OSError as exc:
            raise TgtdError('reading tgtd\'s answer failed: %s'
                            % (exc.strerror or exc)) from None
        if text is None:
            raise TgtdError('tgtd\'s answer was cut short')
        return text.split(b'\0', 1)[0].decode('utf-8', 'replace')


def _read_exactly(sock, size):
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b''.join(chunks)

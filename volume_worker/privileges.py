"""Least privilege at start-up: private files, privsep daemons, a plain user.

``secure_files`` makes everything the worker creates private (umask 077:
directories 0700, files 0600; the state directory, the SQLite database, lock
files, backups, images). ``drop_to_user`` runs when the worker starts as root
with ``[DEFAULT] user`` set: it starts the privsep daemons (the drivers' tgt
context with no capability, os-brick's with its own) while still root, then
becomes that user for good. Started as root without ``user`` (the quick
start), nothing is dropped and privileged calls run in-process.
"""

import grp
import os
import pwd

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


class PrivilegeError(Exception):
    """The worker cannot take the identity or daemons it is configured for."""


def secure_files(conf):
    """umask 077, and the state directory created private if missing."""
    os.umask(PRIVATE_UMASK)
    try:
        os.makedirs(conf.state_path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise PrivilegeError('cannot create state_path %s: %s'
                             % (conf.state_path, exc.strerror)) from None
    mode = os.stat(conf.state_path).st_mode & 0o777
    if mode & 0o077:
        LOG.warning('state_path %s is open to others (mode %o); the worker '
                    'keeps its database and locks there: chmod 700 it',
                    conf.state_path, mode)
    for path in list(getattr(conf, 'config_file', None) or ()):
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            continue
        if mode & 0o004:
            LOG.warning('%s is readable by every user (mode %o) and may hold '
                        'secrets (transport_url, [key_manager] fixed_key): '
                        'chmod o-r it', path, mode)


def target_identity(conf):
    """``(uid, gid, name)`` of ``[DEFAULT] user``/``group``, or None."""
    if not conf.user:
        if conf.group:
            raise PrivilegeError('[DEFAULT] group is set without user')
        return None
    try:
        entry = (pwd.getpwuid(int(conf.user)) if conf.user.isdigit()
                 else pwd.getpwnam(conf.user))
    except (KeyError, ValueError):
        raise PrivilegeError('[DEFAULT] user %r: no such user'
                             % conf.user) from None
    gid = entry.pw_gid
    if conf.group:
        try:
            gid = (int(conf.group) if conf.group.isdigit()
                   else grp.getgrnam(conf.group).gr_gid)
        except KeyError:
            raise PrivilegeError('[DEFAULT] group %r: no such group'
                                 % conf.group) from None
    return entry.pw_uid, gid, entry.pw_name


def drop_to_user(conf, start_daemons=None):
    """Start the privsep daemons, then become ``[DEFAULT] user``.

    Returns the identity taken, or None when no user is configured. Refuses
    (PrivilegeError) a user configured for a worker not started as root,
    and a state directory the user could not write.
    """
    identity = target_identity(conf)
    if identity is None:
        return None
    uid, gid, name = identity
    if os.geteuid() != 0:
        if os.geteuid() == uid:
            return identity     # started as that user already
        raise PrivilegeError('[DEFAULT] user is %s but the worker runs as '
                             'uid %d, not root: start it as root (it drops '
                             'to %s) or as %s' % (name, os.geteuid(), name,
                                                  name))
    _give_state_path(conf.state_path, uid, gid)
    (start_daemons or start_privsep_daemons)(conf)
    # The user's own supplementary groups (/etc/group), nothing of root's.
    os.initgroups(name, gid)
    os.setgid(gid)
    os.setuid(uid)
    LOG.info('Running as %s (uid %d, gid %d); root commands go through '
             'privsep daemons', name, uid, gid)
    return identity


def _give_state_path(path, uid, gid):
    """The state directory becomes the user's, if root owns it.

    What root made inside it (an earlier run as root, a log file opened
    before the drop) is handed over too. A directory owned by anyone else
    is refused: taking it over could hand the user somebody else's files.
    """
    st = os.stat(path)
    if st.st_uid == uid:
        return
    if st.st_uid != 0:
        raise PrivilegeError('state_path %s belongs to uid %d, not to the '
                             'worker\'s user (uid %d)'
                             % (path, st.st_uid, uid))
    os.chown(path, uid, gid)
    os.chmod(path, 0o700)
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            entry = os.path.join(top, name)
            if os.lstat(entry).st_uid == 0:
                os.lchown(entry, uid, gid)


def _native_privsep_channels():
    """Privsep clients of native threads and sockets, under eventlet too.

    Driver calls run in native threads (``concurrency.run_blocking``); a
    channel built of green locks and a green reader thread hangs them. With
    native ones a green caller blocks the event loop for its call (as an
    in-process privileged call does), and a native caller works.
    """
    from oslo_privsep import comm
    from oslo_privsep import daemon

    from volume_worker import concurrency
    if concurrency.mode() != concurrency.EVENTLET:
        return
    from eventlet import patcher
    comm.threading = patcher.original('threading')
    daemon.socket = patcher.original('socket')


def start_privsep_daemons(conf=None, contexts=None):
    """Start one privsep daemon per context, while this process is root.

    Each is started by executing oslo.privsep's helper (root already, so
    no sudo), not by forking this process: a fork taken while another
    thread (the reader of a daemon started before) holds a lock leaves the
    child with that lock held for good, and the daemon hangs on its first
    request. An operator's own ``[privsep_*] helper_command`` is kept.
    """
    import shlex
    import sys

    from oslo_config import cfg
    from oslo_privsep import priv_context
    from os_brick import privileged as brick_privileged

    from drivers import privileged

    conf = conf or cfg.CONF
    if contexts is None:
        contexts = list(privileged.CONTEXTS) + [
            brick_privileged.default,
            brick_privileged.brick_privsep_hide_output]
    _native_privsep_channels()
    helper = [sys.executable, '-m', 'oslo_privsep.daemon']
    for option, paths in (('--config-file', conf.config_file),
                          ('--config-dir', conf.config_dir)):
        for path in paths or ():
            helper += [option, path]
    for context in contexts:
        conf.set_default('helper_command', shlex.join(helper),
                         group=context.cfg_section)
        context.set_client_mode(True)
        try:
            context.start(priv_context.Method.ROOTWRAP)
        except Exception as exc:
            raise PrivilegeError('the privsep daemon of [%s] did not start: '
                                 '%s' % (context.cfg_section, exc)) from None
    LOG.info('privsep daemons started: %s', ', '.join(
        '%s (%s)' % (c.cfg_section, c.pypath) for c in contexts))

"""Exporting files as iSCSI LUNs through Debian's userspace target, tgtd.

The operator runs ``tgtd``; this module drives it over its control socket
(``drivers.tgt_ipc``, the protocol of ``tgtadm``, so no CHAP secret is ever
a process argument), through ``drivers.privileged`` when the worker runs
unprivileged.  It never trusts its own memory: every call reads the target
table back from tgtd, so it converges after a restart of tgtd or of the
worker.
"""

import dataclasses
import re

from oslo_log import log as logging

from drivers import base
from drivers import exception
from drivers import tgt_ipc

LOG = logging.getLogger(__name__)

_TID_CLASH_RETRIES = 20

_TARGET_RE = re.compile(r'^Target (\d+): (\S+)$')
_LUN_RE = re.compile(r'^\s+LUN: (\d+)$')
_PATH_RE = re.compile(r'^\s+Backing store path: (.*)$')
_NEXUS_RE = re.compile(r'^\s+I_T nexus: (\d+)$')


@dataclasses.dataclass
class Target:
    """One target as tgtd reports it."""

    tid: int
    iqn: str
    luns: dict = dataclasses.field(default_factory=dict)   # lun -> path
    accounts: list = dataclasses.field(default_factory=list)
    acls: list = dataclasses.field(default_factory=list)
    sessions: int = 0


def parse_targets(text):
    """Parse ``tgtadm --op show --mode target`` output into Targets by IQN."""
    targets = {}
    current = None
    section = None
    lun = None
    for line in text.splitlines():
        m = _TARGET_RE.match(line)
        if m:
            current = Target(tid=int(m.group(1)), iqn=m.group(2))
            targets[current.iqn] = current
            section = lun = None
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.endswith('information:'):
            section = stripped
            continue
        if section == 'LUN information:':
            m = _LUN_RE.match(line)
            if m:
                lun = int(m.group(1))
                continue
            m = _PATH_RE.match(line)
            if m and lun is not None and m.group(1) != 'None':
                current.luns[lun] = m.group(1)
        elif section == 'I_T nexus information:':
            if _NEXUS_RE.match(line):
                current.sessions += 1
        elif section == 'Account information:' and stripped:
            current.accounts.append(stripped.split()[0])
        elif section == 'ACL information:' and stripped:
            current.acls.append(stripped)
    return targets


class TgtAdm:
    """Creates and removes one-LUN CHAP-protected targets in a tgtd.

    ``control_port`` selects the tgtd instance (``tgtd -C N``); 0 is the
    default instance.  ``request`` follows ``tgt_ipc.request`` (default:
    ``drivers.privileged.request``, in this process or its privsep
    daemon).
    """

    def __init__(self, control_port=0, request=None):
        self.control_port = int(control_port or 0)
        if request is None:
            from drivers import privileged
            request = privileged.request
        self._request = request
        # tgtd itself is the arbiter between processes (a clashing tid is
        # refused and retried); this lock only spares our own threads that.
        self._lock = base.native_lock()

    def _tgt(self, mode, op, tolerate=(), **kwargs):
        """One request; tgtd error codes in ``tolerate`` count as success."""
        try:
            return self._request(self.control_port, mode, op, **kwargs)
        except tgt_ipc.TgtdError as exc:
            if exc.code is not None and exc.code in tolerate:
                return ''
            raise

    @staticmethod
    def _fail(what, exc):
        raise exception.VolumeBackendAPIException(
            data='tgtd failed to %s: %s' % (what, exc))

    def show_targets(self):
        """All targets of the tgtd instance, keyed by IQN."""
        try:
            out = self._tgt('target', 'show')
        except tgt_ipc.TgtdError as exc:
            self._fail('list targets (is tgtd running with control port %d?)'
                       % self.control_port, exc)
        return parse_targets(out)

    def check_reachable(self):
        """Raise unless tgtd answers (a small request: listing every
        target costs seconds with thousands of them)."""
        try:
            self._tgt('system', 'show')
        except tgt_ipc.TgtdError as exc:
            self._fail('answer (is tgtd running with control port %d?)'
                       % self.control_port, exc)

    def find_target(self, iqn):
        return self.show_targets().get(iqn)

    def ensure_target(self, iqn, path, user, password, thin=True):
        """Export ``path`` as LUN 1 of target ``iqn`` behind CHAP ``user``
        (or open to any initiator when ``user`` is None).

        Idempotent: an existing, complete export is left alone (its sessions
        survive); a partial or different one is torn down and rebuilt.
        Returns the target's tid.
        """
        with self._lock:
            return self._ensure_in(self.show_targets(), iqn, path, user,
                                   password, thin)

    def ensure_targets(self, exports, thin=True):
        """``ensure_target`` for many exports, reading tgtd's table once.

        ``exports`` holds ``(iqn, path, user, password)`` tuples. A worker
        starting with thousands of exports would otherwise list every
        target once per export. Returns ``{iqn: reason}`` for the exports
        that could not be made; the others are in place.
        """
        failed = {}
        with self._lock:
            targets = self.show_targets()
            for iqn, path, user, password in exports:
                try:
                    self._ensure_in(targets, iqn, path, user, password, thin)
                except exception.VolumeBackendAPIException as exc:
                    failed[iqn] = str(exc)
        return failed

    def _ensure_in(self, targets, iqn, path, user, password, thin):
        """Make the export against ``targets`` (tgtd's table, kept current)."""
        existing = targets.get(iqn)
        if existing is not None:
            if (existing.luns.get(1) == path
                    and (user in existing.accounts if user
                         else not existing.accounts)
                    and 'ALL' in existing.acls):
                # Leave the account alone: deleting it would unbind it.
                return existing.tid
            LOG.info('Rebuilding incomplete export %s (tid %d)',
                     iqn, existing.tid)
            self._delete_target(existing.tid)
            del targets[iqn]
        if user:
            self._ensure_account(user, password)
        tid = self._new_target(iqn, {t.tid for t in targets.values()})
        try:
            self._tgt('logicalunit', 'new', tid=tid, lun=1,
                      params=[('path', path)])
            if thin:
                # Lets initiators UNMAP: tgtd punches holes in the file.
                self._tgt('logicalunit', 'update', tid=tid, lun=1,
                          params=[('thin_provisioning', 1)])
            if user:
                self._tgt('account', 'bind', tid=tid,
                          params=[('user', user)])
            self._tgt('target', 'bind', tid=tid,
                      params=[('initiator-address', 'ALL')])
        except tgt_ipc.TgtdError as exc:
            self._delete_target(tid)
            self._fail('export %s as %s' % (path, iqn), exc)
        targets[iqn] = Target(tid=tid, iqn=iqn, luns={1: path},
                              accounts=[user] if user else [],
                              acls=['ALL'])
        return tid

    def _new_target(self, iqn, used):
        """Create an empty target under a tid not in ``used``; return it."""
        for _attempt in range(_TID_CLASH_RETRIES):
            tid = next(n for n in range(1, len(used) + 2) if n not in used)
            try:
                self._tgt('target', 'new', tid=tid,
                          params=[('targetname', iqn)])
                return tid
            except tgt_ipc.TgtdError as exc:
                if exc.code != tgt_ipc.TARGET_EXISTS:
                    self._fail('create target %s' % iqn, exc)
            # Another process took this tid (or created the same IQN)
            # between our read and our write: look again.
            targets = self.show_targets()
            if iqn in targets:
                return targets[iqn].tid
            used = {t.tid for t in targets.values()}
        raise exception.VolumeBackendAPIException(
            data='no free tid for %s after %d attempts'
                 % (iqn, _TID_CLASH_RETRIES))

    def _ensure_account(self, user, password):
        """Create CHAP account ``user``, replacing a stale one of that name.

        Accounts are global to tgtd; ours are named per volume, so one that
        already exists is left from an earlier export of the same volume.
        The password travels only inside the request on tgtd's socket.
        """
        new = {'params': [('user', user), ('password', password)]}
        try:
            try:
                self._tgt('account', 'new', **new)
            except tgt_ipc.TgtdError as exc:
                if exc.code != tgt_ipc.USER_EXISTS:
                    raise
                self._tgt('account', 'delete', params=[('user', user)])
                self._tgt('account', 'new', **new)
        except tgt_ipc.TgtdError as exc:
            self._fail('create CHAP account %s' % user, exc)

    def _delete_target(self, tid):
        try:
            self._tgt('target', 'delete', tid=tid, force=True,
                      tolerate=(tgt_ipc.NO_TARGET,))
        except tgt_ipc.TgtdError as exc:
            self._fail('delete target %s' % tid, exc)

    def remove_target(self, iqn, user=None):
        """Remove target ``iqn`` (open sessions are dropped) and its account.

        Absent target or account is success.
        """
        with self._lock:
            target = self.find_target(iqn)
            if target is not None:
                self._delete_target(target.tid)
            if user:
                try:
                    self._tgt('account', 'delete', params=[('user', user)],
                              tolerate=(tgt_ipc.NO_USER,))
                except tgt_ipc.TgtdError as exc:
                    self._fail('delete CHAP account %s' % user, exc)

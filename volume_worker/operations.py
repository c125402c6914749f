"""Lock and load: the one place where an operation takes hold of its resources.

An endpoint names the family and the resources of a request; ``acquire``
takes the locks of all of them in one global order (so no two operations
can deadlock), loads them, checks that this backend owns them and that each
one's status allows the operation (the transition tables next to the status
enums), and hands the endpoint an ``Operation`` to run. Start-up recovery
goes through the same locks to resume what a previous process left.
"""

import contextlib
import time
import uuid

from oslo_log import log as logging

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker import log_context
from volume_worker import objects
from volume_worker.objects import fields

LOG = logging.getLogger(__name__)

CLUSTER_FROZEN_TTL = 1.0  # seconds


class ResourceType:
    def __init__(self, name, cls, transitions, not_found):
        self.name = name
        self.cls = cls
        self.transitions = transitions
        self.not_found = not_found

    def load(self, resource_id):
        """The resource, deleted or not; raises NotFound when there is no row."""
        return self.cls.get_by_id(resource_id, read_deleted=True)

    def missing(self, resource_id):
        return self.not_found(resource_id)


RESOURCE_TYPES = {
    'volume': ResourceType(
        'volume', objects.Volume, fields.VOLUME_TRANSITIONS,
        lambda i: exception.VolumeNotFound(volume_id=i)),
    'snapshot': ResourceType(
        'snapshot', objects.Snapshot, fields.SNAPSHOT_TRANSITIONS,
        lambda i: exception.SnapshotNotFound(snapshot_id=i)),
    'group': ResourceType(
        'group', objects.Group, fields.GROUP_TRANSITIONS,
        lambda i: exception.GroupNotFound(group_id=i)),
    'group_snapshot': ResourceType(
        'group_snapshot', objects.GroupSnapshot,
        fields.GROUP_SNAPSHOT_TRANSITIONS,
        lambda i: exception.GroupSnapshotNotFound(group_snapshot_id=i)),
    'backup': ResourceType(
        'backup', objects.Backup, fields.BACKUP_TRANSITIONS,
        lambda i: exception.BackupNotFound(backup_id=i)),
    'attachment': ResourceType(
        'attachment', objects.VolumeAttachment, fields.ATTACHMENT_TRANSITIONS,
        lambda i: exception.AttachmentNotFound(attachment_id=i)),
    'service': ResourceType(
        'service', objects.Service, fields.SERVICE_TRANSITIONS,
        lambda i: exception.ServiceNotFound(host='id %s' % i,
                                            binary=objects.service.BINARY)),
}


def lock_name(resource_type, resource_id):
    return 'volume-worker-%s-%s' % (resource_type, resource_id)


class Operation:
    """One operation on its locked, loaded resources: what its flow runs on.

    ``resources`` maps each role's name to its object; ``store`` holds the
    request's other arguments (JSON values, journaled); ``done`` is set
    when the request is a repeat of one already carried out.
    """

    def __init__(self, family, context, store=None, force=False,
                 operation_id=None, operations=None):
        self.id = operation_id or str(uuid.uuid4())
        self.family = family
        self.context = context
        self.store = dict(store or {})
        self.force = force
        self.resources = {}
        self.requested = None  # the subject as the request brought it
        self.is_new = False
        self.resumed = False
        self.loaded_status = None
        self.done = False
        self.journal = None
        self.rescheduled = None  # set when a failed create went back
        self._operations = operations

    @property
    def subject(self):
        return self.resources[self.family.subject.name]

    @property
    def transition(self):
        return RESOURCE_TYPES[self.family.subject.type].transitions.of(
            self.family.operation, self.family.subject.name)

    @property
    def backend(self):
        """The backend (host@backend) the operation runs on."""
        return self._operations.backend

    @property
    def peers(self):
        """RPC client of the other workers (fanouts), or None."""
        return self._operations.peers

    def set_frozen(self, frozen):
        """Refuse (True) or accept again (False) changes on this backend."""
        self._operations.set_frozen(frozen)

    @property
    def image_service(self):
        """The image service of the backend (None: no image operations)."""
        return self._operations.image_service

    @property
    def rescheduler(self):
        """Where a failed create may go back to (flows/reschedule), or None."""
        return getattr(self._operations, 'rescheduler', None)

    def backend_option(self, name):
        """An option of the backend's section, as its driver reads it."""
        return self._operations.driver.configuration.safe_get(name)

    def backend_reports(self, capability):
        """A capability from the driver's last report (asks it once if none).

        The reporter's last stats when it has some: an operation never
        waits on a ``get_volume_stats`` that hangs.
        """
        from volume_worker import concurrency
        stats = getattr(self._operations.reporter, 'last_stats', None)
        if not stats:
            stats = concurrency.run_blocking(
                self._operations.driver.get_volume_stats) or {}
        return stats.get(capability)

    def resource_list(self):
        out = []
        for role in self.family.roles:
            value = self.resources[role.name]
            for resource in (value if role.many else [value]):
                out.append([role.name, role.type, resource.id])
        return out

    def run(self):
        """Run the family's flow; nothing when the request was already done."""
        if self.done:
            return None
        return self._operations.run(self)


class Operations:
    """Acquires, runs and recovers the operations of one backend."""

    def __init__(self, backend, driver, coordinator, runner, notifier,
                 reporter, member=None):
        self.backend = backend  # host@backend, or cluster@backend
        # The names a resource of this backend may carry: the backend's,
        # and this worker's own (a service row, a resource placed by the
        # worker's own name).
        self.member = member or backend
        self.names = frozenset((backend, self.member))
        self.driver = driver
        self.coordinator = coordinator
        self.runner = runner
        self.notifier = notifier
        self.reporter = reporter
        self.rescheduler = None  # flows.reschedule.Rescheduler, if any
        self.accepting = True
        # Mirrors the service row's ``frozen`` (set at start-up, then by
        # freeze, thaw and failover): no query per operation. Workers of a
        # cluster share one queue: any of them frozen freezes all (a thaw
        # thaws all), read from the database at most once a
        # CLUSTER_FROZEN_TTL and after each change made here.
        self.frozen = False
        self._cluster_frozen = (0.0, False)
        # Set by the service: the other workers and backends over RPC
        # (peers.Peers: an rpcapi.VolumeAPI with what a migration needs).
        self.peers = None
        self.image_service = None  # set by the service (image_store)

    def owns(self, resource):
        """Whether ``resource`` lives on this backend (or names this worker)."""
        return resource.owner() in self.names

    def deps(self, context):
        return {'context': context, 'driver': self.driver,
                'notifier': self.notifier, 'images': self.image_service,
                'peers': self.peers}

    @contextlib.contextmanager
    def acquire(self, family, context, store=None, force=False, **given):
        """Lock and load the resources of one request; yields its Operation.

        ``given`` maps each role to the object the request brought (a new
        subject) or to its id; roles declared ``id_from`` are found from
        another role's resource. A refusal (before anything changed) is
        also published as ``<event>.error`` with ``refused`` and the reason.
        """
        op = Operation(family, context, store, force, operations=self)
        try:
            with contextlib.ExitStack() as locks:
                locks.enter_context(log_context.operation(
                    context, _given_id(given.get(family.subject.name))))
                with self._refusals_announced(family, given):
                    self._check_serving(family)
                    ids = _resolve_ids(family, given)
                    locks.enter_context(self._locked(_pairs(ids), family))
                    self._load(op, given, ids)
                yield op
            if op.subject.obj_attr_is_set('deleted') and op.subject.deleted:
                # Ids are never reused: its lock will not be taken again.
                self.coordinator.remove_lock_file(
                    lock_name(family.subject.type, op.subject.id))
        finally:
            self.reporter.mark_dirty()

    def _check_serving(self, family):
        """Refuse at once what this backend cannot take now, by its state.

        The one place for such refusals (shutting down, driver not set up
        with the reason its set-up fails, frozen), so every operation family
        gets them alike.
        """
        if not self.accepting:
            raise exception.ShuttingDown(operation=family.operation)
        if not self.driver.initialized:
            raise exception.DriverNotInitialized(
                backend=self.backend,
                reason=getattr(self.reporter, 'state_reason', None) or
                'set-up has not succeeded')
        if not family.while_frozen and self.is_frozen():
            raise exception.BackendFrozen(backend=self.backend,
                                          operation=family.operation)

    def is_frozen(self):
        cluster = getattr(self.driver, 'cluster_name', None)
        if not cluster:
            return self.frozen
        checked, frozen = self._cluster_frozen
        now = time.monotonic()
        if now - checked > CLUSTER_FROZEN_TTL:
            frozen = db.service_cluster_frozen(cluster)
            self._cluster_frozen = (now, frozen)
        return frozen

    def set_frozen(self, frozen):
        self.frozen = frozen
        self._cluster_frozen = (0.0, False)

    @contextlib.contextmanager
    def _refusals_announced(self, family, given):
        try:
            yield
        except exception.EXPECTED as exc:
            subject = given.get(family.subject.name)
            self.notifier.refused(
                family.event + '.error', family.subject.type,
                subject if isinstance(subject, str)
                else getattr(subject, 'id', None), str(exc))
            raise

    def run(self, op):
        from volume_worker import concurrency
        return concurrency.run_isolated(self.runner.run, op,
                                        self.deps(op.context))

    @contextlib.contextmanager
    def _locked(self, role_ids, family=None):
        """Hold the locks of every (role, id), taken in one global order."""
        types = {role.name: role.type for role in family.roles}
        names = sorted({lock_name(types[role], rid) for role, rid in role_ids})
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(self.coordinator.lock(name))
            yield

    def _load(self, op, given, ids):
        family = op.family
        for role in family.roles:
            rtype = RESOURCE_TYPES[role.type]
            transition = rtype.transitions.of(family.operation, role.name)
            if role.many:
                op.resources[role.name] = [
                    self._load_held(rtype, role, transition, rid, op)
                    for rid in ids[role.name]]
                continue
            try:
                resource = rtype.load(ids[role.name])
            except exception.NotFound:
                if not role.new:
                    raise
                resource = None
            if role is family.subject:
                op.requested = given.get(role.name)
            if resource is None:  # a new resource (the request's object)
                if role is family.subject:
                    op.is_new = True
                resource = given[role.name]
                status = fields.ABSENT
            elif resource.deleted:
                if role is family.subject and transition.to == resource.DELETED:
                    LOG.info('%s %s is already deleted', role.type.title(),
                             resource.id)
                    op.resources[role.name] = resource
                    op.done = True
                    continue
                if role.new:
                    raise exception.InvalidInput(
                        reason='%s %s was deleted; its id cannot be reused'
                        % (role.type, resource.id))
                raise rtype.missing(resource.id)
            else:
                status = resource.status
            if status is not fields.ABSENT and not self.owns(resource):
                # (A new subject is placed by its endpoint or family check.)
                raise exception.NotOwned(
                    resource=role.type, resource_id=resource.id,
                    owner=resource.host, backend=self.backend)
            op.resources[role.name] = resource
            if role is family.subject:
                op.loaded_status = status
                # Journaled: where a "back to where it was" transition ends.
                op.store['prior_status'] = status
                if status in transition.settled:
                    LOG.info('%s %s is already %s; repeated %s ignored',
                             role.type, resource.id, status, family.operation)
                    op.done = True
                    continue
            if not transition.allows(status, op.force):
                raise exception.InvalidStatus(
                    resource=role.type, resource_id=resource.id,
                    status=status or 'absent', operation=family.operation,
                    expected=', '.join(transition.expected(op.force)))
        if family.check is not None:
            family.check(op)

    def _load_held(self, rtype, role, transition, resource_id, op):
        """One existing resource, owned here, in a status the operation allows."""
        resource = rtype.load(resource_id)
        if resource.deleted:
            raise rtype.missing(resource_id)
        if not self.owns(resource):
            raise exception.NotOwned(
                resource=role.type, resource_id=resource.id,
                owner=resource.host, backend=self.backend)
        if not transition.allows(resource.status, op.force):
            raise exception.InvalidStatus(
                resource=role.type, resource_id=resource.id,
                status=resource.status, operation=op.family.operation,
                expected=', '.join(transition.expected(op.force)))
        return resource

    # -- recovery ---------------------------------------------------------------

    def resume(self, family, row, context, recheck=False):
        """Finish or revert one journaled operation, under all its locks.

        ``recheck`` (while serving): once the locks are held, the row must
        still exist, or the operation was in flight and has finished
        (returns ``GONE``).
        """
        role_ids = [(name, rid) for name, _type, rid in row['resources']]
        subject_id = dict(role_ids).get(family.subject.name)
        with self._locked(role_ids, family), \
                log_context.operation(context, subject_id):
            if recheck and not db.journal_exists(row['id']):
                return GONE
            # Under the locks: a claim by compare-and-swap on the row's
            # owner and epoch (this worker's row left by its previous
            # process, or a peer's whose lease expired). It fails when the
            # row went or another worker took it meanwhile.
            owner = getattr(self.runner, 'owner', self.backend)
            claimed = db.journal_claim(
                row, owner, getattr(self.runner, 'lease_timeout', None))
            if claimed is None:
                return GONE
            if row['owner'] != owner:
                LOG.warning('%s of %s %s taken over from %s (its lease '
                            'expired)', family.operation,
                            family.subject.type, subject_id, row['owner'])
            row = claimed
            op = Operation(family, context, row['store'],
                           operation_id=row['id'], operations=self)
            op.resumed = True
            many = {role.name for role in family.roles if role.many}
            for name in many:
                op.resources[name] = []
            try:
                for name, rtype, rid in row['resources']:
                    resource = RESOURCE_TYPES[rtype].load(rid)
                    if name in many:
                        op.resources[name].append(resource)
                    else:
                        op.resources[name] = resource
            except exception.NotFound:
                # A resource is gone: the operation had finished.
                db.OperationJournal.of_row(row).finish()
                raise
            op.loaded_status = op.subject.status
            try:
                return self.runner.resume(op, row, self.deps(context))
            finally:
                self.reporter.mark_dirty()


GONE = object()  # resume: the row went (or was taken) before the locks came


def _given_id(value):
    """The id of a resource a request names by id or brings as an object."""
    return value if isinstance(value, str) else getattr(value, 'id', None)


def _pairs(ids):
    """(role, id) for every resource, members of a list one by one."""
    for name, value in ids.items():
        for resource_id in (value if isinstance(value, list) else [value]):
            yield name, resource_id


def _resolve_ids(family, given):
    """{role name: id} for every role, before any lock is taken."""
    unknown = set(given) - {role.name for role in family.roles}
    if unknown:
        raise TypeError('%s takes no resource %s' % (
            family.operation, ', '.join(sorted(unknown))))
    ids = {}
    for role in family.roles:
        value = given.get(role.name)
        if role.many:
            if not isinstance(value, (list, tuple)):
                raise TypeError('%s needs a list of %s'
                                % (family.operation, role.name))
            ids[role.name] = [v if isinstance(v, str) else v.id
                              for v in value]
        elif value is not None:
            ids[role.name] = (value if isinstance(value, (str, int))
                              else value.id)
    for role in family.roles:
        if role.name in ids:
            continue
        if role.id_from is None:
            raise TypeError('%s needs its %s' % (family.operation, role.name))
        source, field = role.id_from
        value = given[source]
        if isinstance(value, str):
            # An unlocked read, safe because the field never changes.
            source_type = next(r.type for r in family.roles
                               if r.name == source)
            value = RESOURCE_TYPES[source_type].load(value)
        ids[role.name] = getattr(value, field)
    return ids

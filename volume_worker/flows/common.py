"""What every operation family shares: the task base, the begin and finish tasks, driver calls.

A family's flow is ``operation_flow(name, *backend_tasks)``: ``Begin`` moves
the operation's subject into its transitional status (the journal row rides
in that write, before any backend effect), the family's tasks do the work,
and ``Finish`` saves the driver's model updates with the success status (the
journal row goes in that write).
"""

import time

from oslo_log import log as logging
from taskflow.patterns import linear_flow
from taskflow import task
from taskflow.types import failure as tf_failure

from volume_worker import concurrency
from volume_worker import exception
from volume_worker import metrics
from volume_worker.objects import fields

LOG = logging.getLogger(__name__)


class VolumeTask(task.Task):
    """A task named after its class, declaring what a resumed run does with it.

    ``checkpoint = True``: its effect lives outside the database (on the
    backend) and is costly to redo; the journal records its result when it
    finishes, and a resumed run skips it. ``idempotent = True``: running it
    again converges on the same result, and a resumed run does. Every task
    declares one of the two.

    Tasks keep no per-run state: one flow object serves every run of its
    family (building tasks costs more than running them).
    """

    checkpoint = False
    idempotent = False

    def __init__(self, **kwargs):
        kwargs.setdefault('name', type(self).__name__)
        super().__init__(**kwargs)


class Begin(VolumeTask):
    """Move the subject into its transitional status and announce the start.

    A new subject is inserted; an existing one moves by compare-and-swap
    from a status its transition allows. The operation's journal row is
    written in the same transaction. A subject the operation only holds
    (a connection of a volume) keeps its status: the row is written alone.
    Resumed, the subject is already in the transitional status: nothing to
    do. Revert moves it to the transition's error status and sends
    ``<event>.error`` with the reason.
    """

    idempotent = True

    def execute(self, op, notifier):
        if op.resumed:
            return  # the first run moved it and announced the start
        subject, transition = op.subject, op.transition
        if not transition.changes_status:
            if op.journal is not None:
                op.journal.flush()
            notifier.info(op.family.event + '.start', subject)
            return
        subject.status = transition.via
        if op.is_new:
            subject.create(journal=op.journal)
        elif not subject.save(expected_status=op.loaded_status,
                              journal=op.journal):
            raise exception.InvalidStatus(
                resource=op.family.subject.type, resource_id=subject.id,
                status='changed by another worker',
                operation=op.family.operation, expected=op.loaded_status)
        notifier.info(op.family.event + '.start', subject)

    def revert(self, op, notifier, result=None, flow_failures=None,
               **kwargs):
        subject, transition = op.subject, op.transition
        rescheduled = getattr(op, 'rescheduled', None)
        if rescheduled:  # gone back to the scheduler (flows/reschedule)
            notifier.error(op.family.event + '.error', subject,
                           reason=first_failure(flow_failures),
                           **rescheduled)
            return
        if (transition.changes_status and
                not isinstance(result, tf_failure.Failure)):
            subject.status = _resolve(op, transition.error)
            if not subject.save(expected_status=transition.via):
                LOG.warning('%s %s left %s while its %s reverted',
                            op.family.subject.type, subject.id,
                            transition.via, op.family.operation)
        notifier.error(op.family.event + '.error', subject,
                       reason=first_failure(flow_failures))


class Finish(VolumeTask):
    """Save the driver's model updates with the success status; announce the end.

    ``updates`` names the store values (dicts or None) to merge into the
    subject. A subject whose success status is ``deleted`` is soft-deleted.
    The journal row goes in the same write.
    """

    idempotent = True

    def __init__(self, updates=(), **kwargs):
        super().__init__(requires=tuple(updates), **kwargs)
        self.updates = tuple(updates)

    def execute(self, op, notifier, **updates):
        subject, transition = op.subject, op.transition
        merge_model_update(subject, *(updates[n] for n in self.updates))
        if not transition.changes_status:
            # Nothing of its own to write: the journal row goes at once.
            subject.save(journal=op.journal)
            notifier.info(op.family.event + '.end', subject)
            return
        if transition.to == subject.DELETED:
            done = subject.destroy(expected_status=transition.via,
                                   journal=op.journal)
        else:
            subject.status = _resolve(op, transition.to)
            done = subject.save(expected_status=transition.via,
                                journal=op.journal)
        if not done:
            raise exception.InvalidStatus(
                resource=op.family.subject.type, resource_id=subject.id,
                status='changed by another worker',
                operation=op.family.operation, expected=transition.via)
        notifier.info(op.family.event + '.end', subject)


def _resolve(op, status):
    """A transition's status, ``UNCHANGED`` meaning where the subject was
    (and a function giving it from the request)."""
    if callable(status):
        return status(op.store)
    return op.store['prior_status'] if status == fields.UNCHANGED else status


def operation_flow(name, *tasks, updates=()):
    """The flow of one family: Begin, the family's tasks, Finish."""
    return linear_flow.Flow(name).add(Begin(), *tasks,
                                      Finish(updates=updates))


def call_driver(method, *args, **kwargs):
    """Call a bound driver method in the native thread pool (it may block).

    Its time goes to the driver-call latency metric.
    """
    started = time.perf_counter()
    try:
        return concurrency.run_blocking(method, *args, **kwargs)
    finally:
        metrics.driver_call(method, time.perf_counter() - started)


def merge_model_update(resource, *updates):
    """Apply driver model updates (dicts or None) to an object's fields."""
    for update in updates:
        for key, value in (update or {}).items():
            if key in resource.fields and key not in ('id', 'status'):
                setattr(resource, key, value)
            else:
                LOG.warning('Driver returned field %s for %s; ignored',
                            key, resource.id)


def first_failure(flow_failures):
    """The message of the failure that made a flow revert."""
    for failure in (flow_failures or {}).values():
        return failure.exception_str
    return None

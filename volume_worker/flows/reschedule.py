"""Reschedule a failed create: back to the scheduler, as Cinder's volume manager does.

A ``create_volume`` cast by a scheduler carries ``request_spec`` and
``filter_properties``; with ``filter_properties['retry']`` (the scheduler's
``num_attempts`` and the backends tried) a create that fails here in a way
another backend may not is cleaned up (the create's own reverts remove what
the backend holds), its row is removed from this database (the volume never
existed here, and its id stays usable elsewhere), and ``create_volume`` is
cast back to ``scheduler_topic`` in the shape of Cinder's scheduler API
(``volume``, ``snapshot_id``, ``image_id``, ``request_spec`` with
``volume_id``, ``filter_properties`` whose ``retry`` gets ``exc``, the
failure's traceback lines; the scheduler counts the attempt and records the
backend). ``volume.create.error`` says ``rescheduled`` with the attempt and
the reason. Once ``num_attempts`` has reached ``scheduler_max_attempts`` (the
scheduler would refuse the next), without retry information, or for a
failure no other backend would avoid (a bad request, a missing resource),
the volume goes to ``error`` as any failed create.

A revert resumed after a crash never reschedules: whether the cast went out
before the crash is unknown, and two backends must not create one volume.
"""

import json
import traceback

from oslo_log import log as logging

from drivers import exception as driver_exception
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker import rpc

LOG = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 65536

# Failures another backend would meet as well.
NOT_RESCHEDULABLE = (exception.WorkerException, driver_exception.NotFound,
                     driver_exception.Invalid,
                     driver_exception.ImageCopyFailure)


def request_store(request_spec, filter_properties):
    """The journaled store of a create from its scheduler's arguments."""
    store = {}
    for name, value in (('request_spec', request_spec),
                        ('filter_properties', filter_properties)):
        if value is None:
            continue
        if not isinstance(value, dict):
            raise exception.InvalidInput(reason='%s must be a JSON object'
                                         % name)
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError):
            raise exception.InvalidInput(reason='%s must be plain JSON' % name)
        if size > MAX_REQUEST_BYTES:
            raise exception.InvalidInput(reason='%s is larger than %d bytes'
                                         % (name, MAX_REQUEST_BYTES))
        store[name] = value
    retry = (filter_properties or {}).get('retry')
    if retry is not None:
        attempts = retry.get('num_attempts', 0) if isinstance(retry, dict) \
            else None
        if isinstance(attempts, bool) or not isinstance(attempts, int) or \
                attempts < 0:
            raise exception.InvalidInput(
                reason='filter_properties.retry must be an object with '
                       'num_attempts, a whole number >= 0')
    return store


class SchedulerAPI:
    """The scheduler's ``create_volume`` (a cast on ``scheduler_topic``)."""

    def __init__(self, conf, transport):
        import oslo_messaging as messaging
        target = messaging.Target(topic=conf.scheduler_topic, version='1.0')
        self.client = messaging.get_rpc_client(
            transport, target, serializer=rpc.get_serializer())

    def create_volume(self, ctxt, volume, request_spec, filter_properties):
        self.client.cast(ctxt, 'create_volume', volume=volume,
                         snapshot_id=None, image_id=None,
                         request_spec=request_spec,
                         filter_properties=filter_properties, backup_id=None)


class Rescheduler:
    """What a create needs to go back to the scheduler."""

    def __init__(self, scheduler_api, max_attempts):
        self.scheduler_api = scheduler_api
        self.max_attempts = max_attempts


class RescheduleOnFailure(common.VolumeTask):
    """Nothing on the way in; on the way out (after the backend steps were
    undone) the create goes back to the scheduler when it may (above), and
    ``Begin``'s revert then only announces it. Cannot be undone: the cast
    is out."""

    idempotent = True

    def execute(self, op):
        pass

    def revert(self, op, context, flow_failures=None, **kwargs):
        failure = next(iter((flow_failures or {}).values()), None)
        why_not = _why_not(op, failure)
        if why_not:
            if op.store.get('filter_properties', {}).get('retry') is not None:
                LOG.info('Volume %s not rescheduled: %s', op.subject.id,
                         why_not)
            return
        volume = op.subject
        request_spec = dict(op.store['request_spec'],
                            volume_id=volume.id)
        filter_properties = dict(op.store['filter_properties'])
        retry = dict(filter_properties['retry'])
        retry['exc'] = traceback.format_exception(*failure.exc_info) \
            if failure.exc_info and all(failure.exc_info) \
            else [failure.exception_str]
        filter_properties['retry'] = retry
        attempt = retry.get('num_attempts', 0)
        try:
            op.rescheduler.scheduler_api.create_volume(
                context, _as_sent(volume), request_spec, filter_properties)
        except Exception as exc:
            LOG.error('Volume %s could not be sent back to the scheduler '
                      '(%s); it goes to error', volume.id, exc)
            return
        # Sent: the volume never existed here. (We hold its lock; only a
        # writer that takes none could have changed the row.)
        if not db.volume_purge(volume.id, op.transition.via):
            LOG.error('Volume %s changed while its create failed; its row '
                      'stays here although it was rescheduled', volume.id)
        LOG.warning('Volume %s rescheduled after attempt %d of %d: %s',
                    volume.id, attempt, op.rescheduler.max_attempts,
                    failure.exception_str)
        op.rescheduled = {'rescheduled': True, 'attempt': attempt,
                          'max_attempts': op.rescheduler.max_attempts}


def _why_not(op, failure):
    """Why the create goes to error instead (None: reschedule it)."""
    retry = op.store.get('filter_properties', {}).get('retry')
    if retry is None or 'request_spec' not in op.store:
        return 'no retry information'
    if op.rescheduler is None:
        return 'no scheduler to send it to'
    if op.resumed:
        return 'a revert after a restart'
    if failure is None or failure.check(*NOT_RESCHEDULABLE):
        return 'another backend would fail the same way'
    if retry.get('num_attempts', 0) >= op.rescheduler.max_attempts:
        return 'attempt %d of scheduler_max_attempts %d' % (
            retry.get('num_attempts', 0), op.rescheduler.max_attempts)
    return None


def _as_sent(volume):
    """The volume as the scheduler will place it: no host, creating."""
    sent = volume.obj_clone()
    sent.host = None
    return sent

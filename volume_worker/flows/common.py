"""Tasks shared by every flow family: the task base, notifications, driver calls."""

from oslo_log import log as logging
from taskflow import task

from volume_worker import concurrency

LOG = logging.getLogger(__name__)


class VolumeTask(task.Task):
    """A task named after its class.

    ``checkpoint = True`` marks a task whose effect lives outside the
    database (on the backend): the flow journal records its result when it
    finishes, so a resumed flow does not redo it. Tasks without a checkpoint
    are re-run on resume and must be idempotent.
    """

    checkpoint = False

    def __init__(self, **kwargs):
        kwargs.setdefault('name', type(self).__name__)
        super().__init__(**kwargs)


def call_driver(driver, method, *args, **kwargs):
    """Call a driver method in the native thread pool (it may block)."""
    return concurrency.run_blocking(getattr(driver, method), *args, **kwargs)


def merge_model_update(resource, *updates):
    """Apply driver model updates (dicts or None) to an object's fields."""
    for update in updates:
        for key, value in (update or {}).items():
            if key in resource.fields:
                setattr(resource, key, value)
            else:
                LOG.warning('Driver returned unknown field %s for %s; '
                            'ignored', key, resource.id)


class Notify(VolumeTask):
    """Emit ``<event>.start``; on revert emit ``<event>.error``.

    Placed first in a flow so its revert runs last, after every other step
    has been undone: the error notification then carries the final status.
    """

    def __init__(self, event, **kwargs):
        self.event = event
        kwargs.setdefault('name', 'Notify[%s.start]' % event)
        super().__init__(**kwargs)

    def execute(self, notifier, volume):
        notifier.info(self.event + '.start', volume)

    def revert(self, notifier, volume, result=None, flow_failures=None,
               **kwargs):
        reason = _first_failure(flow_failures)
        notifier.error(self.event + '.error', volume, reason=reason)


class NotifyEnd(VolumeTask):
    """Emit ``<event>.end`` once the operation's final state is saved."""

    def __init__(self, event, **kwargs):
        self.event = event
        kwargs.setdefault('name', 'Notify[%s.end]' % event)
        super().__init__(**kwargs)

    def execute(self, notifier, volume):
        notifier.info(self.event + '.end', volume)


def _first_failure(flow_failures):
    for failure in (flow_failures or {}).values():
        return failure.exception_str
    return None

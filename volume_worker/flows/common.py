"""What every flow family shares: the task base, driver calls, notifications."""

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

    Tasks keep no per-run state: one flow object serves every run of its
    family (building tasks costs more than running them).
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


def first_failure(flow_failures):
    """The message of the failure that made a flow revert."""
    for failure in (flow_failures or {}).values():
        return failure.exception_str
    return None

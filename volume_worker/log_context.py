"""Which request and which resource a log line belongs to.

oslo.log reads the request context of the running thread (oslo.context's
thread-local "current" context): ``request_id`` goes into every line, and
``resource_uuid`` into the ``[resource: ID]`` part of text lines and the
``context`` of JSON lines. ``operation()`` sets both for the span of one
operation; ``concurrency`` carries the context into the green thread an
operation runs in and the native threads its driver calls run in.
"""

import contextlib

from oslo_context import context as oslo_context

# Text lines: "... [req-... ...] [resource: <id>] message".
RESOURCE_FORMAT = '[resource: %(uuid)s] '


def current():
    return oslo_context.get_current()


def set_current(context):
    """Make ``context`` the running thread's (None: no context)."""
    if context is not None:
        context.update_store()
    else:
        # oslo.context offers no public way to forget the current context.
        oslo_context._request_store.context = None


@contextlib.contextmanager
def operation(context, resource_id):
    """Lines logged inside carry the request's id and ``resource_id``.

    The request's own context object gets the resource id for the span
    (each request deserializes a context of its own; a copy would cost
    15 us an operation).
    """
    previous = current()
    if context is None:
        context = oslo_context.RequestContext(overwrite=False)
    before = context.resource_uuid
    context.resource_uuid = resource_id
    set_current(context)
    try:
        yield context
    finally:
        context.resource_uuid = before
        set_current(previous)

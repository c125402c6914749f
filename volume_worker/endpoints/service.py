"""The service's own calls (as in Cinder's volume API): capabilities, cleanup, log levels.

A mixin of ``VolumeManager``: it uses the manager's ``driver``, ``reporter``
and ``operations``.
"""

import logging

from oslo_log import log as oslo_logging

from volume_worker import exception
from volume_worker import operations
from volume_worker import recovery
from volume_worker import validation

LOG = oslo_logging.getLogger(__name__)

LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')


class ServiceEndpoints:

    @validation.endpoint(read_only=True)
    def get_capabilities(self, context, discover=False):
        """The driver's ``init_capabilities`` (static stats and standard and
        vendor ``properties``) with the report's state and usage keys.

        ``discover`` asks the driver again; otherwise its last answer.
        """
        validation.check_bool(discover, 'discover')
        return self.reporter.capabilities(discover=discover)

    @validation.endpoint
    def publish_service_capabilities(self, context):
        """A report soon (debounced with the others), from the report loop."""
        self.reporter.mark_dirty()

    @validation.endpoint
    def do_cleanup(self, context, cleanup_request=None):
        """Run start-up recovery again, while serving (see ``recovery``).

        ``cleanup_request`` (optional): ``{"resource_type": T,
        "resource_id": ID}`` limits it to what touches that resource.
        Publishes ``service.cleanup.end`` with the summary.
        """
        resource_id = _cleanup_target(cleanup_request)
        if not self.driver.initialized:
            raise exception.DriverNotInitialized(
                backend=self.backend, reason=self.reporter.state_reason or
                'set-up has not succeeded')
        summary = recovery.recover(self.operations, context, running=True,
                                   resource_id=resource_id)
        LOG.info('Cleanup of %s on request: %s', self.backend, summary)
        self.operations.notifier.publish('service.cleanup.end', dict(
            summary, host=self.backend, resource_id=resource_id))
        return summary

    @validation.endpoint
    def set_log_levels(self, context, log_request):
        """Set the level of every logger whose name starts with ``prefix``.

        ``log_request``: ``{"prefix": "volume_worker.flows", "level":
        "DEBUG"}`` (an empty prefix: every logger, the root's too). The
        whole process is affected (every backend it serves).
        """
        prefix, level = _log_request(log_request, need_level=True)
        changed = set_levels(prefix, level)
        LOG.info('Log level %s set on %d loggers under %r', level, changed,
                 prefix)

    @validation.endpoint(read_only=True)
    def get_log_levels(self, context, log_request=None):
        """``[{"prefix": logger name, "level": name}]`` of the loggers whose
        name starts with the request's ``prefix``."""
        prefix, _level = _log_request(log_request or {})
        return [{'prefix': name, 'level': level}
                for name, level in sorted(get_levels(prefix).items())]


def _cleanup_target(request):
    if request is None:
        return None
    if not isinstance(request, dict):
        raise exception.InvalidInput(reason='cleanup_request must be a JSON '
                                     'object')
    unknown = set(request) - {'resource_type', 'resource_id'}
    if unknown:
        raise exception.InvalidInput(reason='cleanup_request takes no %s'
                                     % ', '.join(sorted(unknown)))
    rtype, rid = request.get('resource_type'), request.get('resource_id')
    if rtype is not None and rtype not in operations.RESOURCE_TYPES:
        raise exception.InvalidInput(reason='resource_type must be one of %s'
                                     % ', '.join(operations.RESOURCE_TYPES))
    if rid is not None:
        validation.check_uuid(rid, 'resource_id')
    return rid


def _log_request(request, need_level=False):
    if not isinstance(request, dict):
        raise exception.InvalidInput(reason='log_request must be a JSON '
                                     'object with prefix and level')
    unknown = set(request) - {'prefix', 'level'}
    if unknown:
        raise exception.InvalidInput(reason='log_request takes no %s'
                                     % ', '.join(sorted(unknown)))
    prefix = validation.check_text(request.get('prefix') or '', 'prefix',
                                   255)
    level = request.get('level')
    if level is None and not need_level:
        return prefix, None
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise exception.InvalidInput(reason='level must be one of %s'
                                     % ', '.join(LEVELS))
    return prefix, level.upper()


def _loggers(prefix):
    names = [name for name, logger in
             list(logging.root.manager.loggerDict.items())
             if isinstance(logger, logging.Logger) and
             name.startswith(prefix)]
    if prefix and prefix not in names:
        names.append(prefix)  # set it even before anything logged there
    loggers = [logging.getLogger(name) for name in names]
    if not prefix:
        loggers.append(logging.getLogger())
    return loggers


def set_levels(prefix, level):
    """Set ``level`` on the loggers under ``prefix``; returns how many."""
    loggers = _loggers(prefix)
    for logger in loggers:
        logger.setLevel(level)
    return len(loggers)


def get_levels(prefix):
    """{logger name: effective level name} under ``prefix``."""
    return {logger.name: logging.getLevelName(logger.getEffectiveLevel())
            for logger in _loggers(prefix)}

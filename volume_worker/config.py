"""Loads the configuration of a worker or client process."""

import configparser
import logging as std_logging
import warnings

from oslo_config import cfg
from oslo_log import log as logging

from volume_worker import opts

PROJECT = 'volume-worker'

# oslo.messaging, futurist, os-brick and taskflow warn on import that eventlet
# is deprecated; we know, and keep eventlet confined to volume_worker.concurrency.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')


def parse_args(argv, conf=None, default_config_files=None):
    conf = conf if conf is not None else cfg.CONF
    opts.register_opts(conf)
    opts.set_defaults(conf)
    logging.register_options(conf)
    from volume_worker import log_context
    conf.set_default('instance_uuid_format', log_context.RESOURCE_FORMAT)
    conf(argv, project=PROJECT, default_config_files=default_config_files)
    return conf


def missing_config(conf, program):
    """What to tell a user when no configuration file was found, or None.

    Without one, every option has its default: a client would send to
    ``<this hostname>@backend1`` (a queue nobody serves: a call waits out
    its whole timeout, a cast vanishes) and ``volume-worker-manage`` would
    open ``/var/lib/volume-worker/volume-worker.sqlite``.
    """
    if conf.config_file or conf.config_dir:
        return None
    import os
    dirs = ['~/.%s' % PROJECT, '~', '/etc/%s' % PROJECT, '/etc']
    names = ['%s.conf' % PROJECT]
    if program != PROJECT:
        names.append('%s.conf' % program)
    return ('no configuration file: give --config-file FILE (the worker\'s '
            'config; %s found none of %s in %s)' % (
                program, ', '.join(names), ', '.join(
                    d + os.sep for d in dirs)))


def setup_logging(conf, name=PROJECT):
    logging.set_defaults(default_log_levels=logging.get_default_log_levels() + [
        'taskflow=WARNING', 'tooz=WARNING', 'alembic=WARNING',
        'os_brick=INFO'])
    logging.setup(conf, name)
    for logger in REFUSAL_LOGGERS:
        std_logging.getLogger(logger).addFilter(REFUSALS)


# Loggers that report refused requests: oslo.messaging's RPC server (unknown
# method or version), its rabbit driver (bodies that are no oslo.messaging
# message), our dispatcher (arguments that cannot be deserialized) and our
# endpoints (arguments that fail validation).
REFUSAL_LOGGERS = ('oslo_messaging.rpc.server',
                   'oslo.messaging._drivers.impl_rabbit',
                   'oslo_messaging._drivers.impl_rabbit',
                   'volume_worker.rpc', 'volume_worker.validation',
                   'object')  # oslo.versionedobjects


class RefusalFilter(std_logging.Filter):
    """Every refused request costs one short line; a flood, a few.

    A refusal is the sender's mistake (and a call's caller gets the error
    itself): one WARNING line with the method and the reason, at most
    ``MAX_CHARS`` characters, no traceback, no line breaks. Lines beyond a
    burst of ``BURST`` are let through at ``PER_SECOND``; the next line let
    through says how many were left out, so a flood of hostile messages
    cannot fill a disk. Other records pass unchanged.

    A rewritten record keeps the name WARNING but gets a level number just
    below it: oslo.log appends the exception being handled to any record
    of WARNING or above, and some refusals are logged inside an ``except``
    (with the sender's bytes in the exception's message).
    """

    MAX_CHARS = 300
    BURST = 20
    PER_SECOND = 1.0
    TEMPLATES = ('%s refused: %s', '%s rejected: %s')
    DISPATCH_ERRORS = ('NoSuchMethod', 'UnsupportedVersion')
    DROPPED = 'Failed to process message ... skipping it.'
    # Said again by the refusal of the request that carried the object.
    REDUNDANT = ('Unable to instantiate unregistered object type '
                 '%(objtype)s',)
    LEVEL = std_logging.WARNING - 1

    def __init__(self, clock=None):
        super().__init__()
        import threading
        import time
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._tokens = float(self.BURST)
        self._last = self._clock()
        self.suppressed = 0

    def filter(self, record):
        if record.msg in self.REDUNDANT:
            return False
        text = self._refusal(record)
        if text is None:
            return True
        with self._lock:
            now = self._clock()
            self._tokens = min(self.BURST, self._tokens +
                               (now - self._last) * self.PER_SECOND)
            self._last = now
            if self._tokens < 1:
                self.suppressed += 1
                return False
            self._tokens -= 1
            left_out, self.suppressed = self.suppressed, 0
        text = ' '.join(text.split())  # one line, whatever the reason holds
        if len(text) > self.MAX_CHARS:
            text = text[:self.MAX_CHARS - 3] + '...'
        if left_out:
            text += ' (%d more refusals not logged)' % left_out
        record.msg, record.args = text, None
        record.exc_info = record.exc_text = record.stack_info = None
        record.levelno, record.levelname = self.LEVEL, 'WARNING'
        return True

    def _refusal(self, record):
        """The line to log if ``record`` reports a refusal, else None."""
        exc = record.exc_info[1] if record.exc_info else None
        if record.msg in self.TEMPLATES:
            return record.getMessage()
        if exc is not None and type(exc).__name__ in self.DISPATCH_ERRORS:
            return 'Request refused: %s' % exc
        if record.msg == self.DROPPED:
            return 'Message dropped, not an oslo.messaging request: %s: %s' % (
                type(exc).__name__ if exc else 'unknown', exc)
        return None


REFUSALS = RefusalFilter()


def early_option(argv, name, default):
    """Read one [DEFAULT] option from the config files named in ``argv``.

    The concurrency model must be chosen before oslo.messaging is imported,
    which is before the full configuration can be parsed.
    """
    files = []
    for i, arg in enumerate(argv):
        if arg == '--config-file' and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith('--config-file='):
            files.append(arg.split('=', 1)[1])
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    value = default
    for path in files:
        try:
            parser.read(path)
        except configparser.Error:
            continue  # oslo.config reports the error properly later
        value = parser.defaults().get(name, value)
    return value

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
    conf(argv, project=PROJECT, default_config_files=default_config_files)
    return conf


def setup_logging(conf, name=PROJECT):
    logging.set_defaults(default_log_levels=logging.get_default_log_levels() + [
        'taskflow=WARNING', 'tooz=WARNING', 'alembic=WARNING',
        'os_brick=INFO'])
    logging.setup(conf, name)
    std_logging.getLogger('oslo_messaging.rpc.server').addFilter(
        _RejectedRequestFilter())


class _RejectedRequestFilter(std_logging.Filter):
    """One line, not a traceback, for requests the dispatcher refuses.

    An unknown method or an unsupported version is the caller's mistake,
    already returned to it when it waits for a reply.
    """

    REFUSALS = ('NoSuchMethod', 'UnsupportedVersion')

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ in self.REFUSALS:
            record.msg = 'Request refused: %s'
            record.args = (exc,)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = std_logging.WARNING, 'WARNING'
        return True


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

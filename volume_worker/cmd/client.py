"""``volume-worker-client``: drive a worker over RabbitMQ from a shell.

One subcommand per RPC method (``create_snapshot`` -> ``create-snapshot``),
declared in ``COMMANDS``: the resource id first, JSON on stdout, and with
``--wait`` a wait for the operation's final status (from the transition
tables), exiting non-zero with the reason on an error status. It speaks
only RPC and notifications: it never opens the worker's database and never
loads a driver.
"""

import argparse
import sys
import time

from oslo_config import cfg

from volume_worker.cmd.client_commands import COMMANDS  # noqa: F401
from volume_worker.cmd.client_core import Client
from volume_worker.cmd.client_core import ClientError
from volume_worker.cmd.client_core import EXIT_ERROR
from volume_worker.cmd.client_core import EXIT_USAGE
from volume_worker.cmd.client_core import _print
from volume_worker import config


def cmd_watch(client, args):
    from volume_worker import events
    stream = events.EventStream(
        client.conf.transport_url,
        control_exchange=client.conf.control_exchange,
        scheduler_topic=client.conf.scheduler_topic).start()
    stop = time.monotonic() + args.seconds if args.seconds else None
    try:
        while stop is None or time.monotonic() < stop:
            for event in stream.poll(0.5):
                _print(event)
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog='volume-worker-client',
        description='Drive a volume worker over RabbitMQ: one subcommand '
                    'per RPC method.')
    sub = parser.add_subparsers(dest='command', required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.name, aliases=list(command.aliases),
                           help=command.help)
        if command.subject and not command.new:
            p.add_argument(command.subject[1], metavar=command.subject[1].upper())
        for flags, options in command.args:
            p.add_argument(*flags, **options)
        p.add_argument('--backend', help='host@backend (default: this '
                       'config\'s host and first enabled backend)')
        p.set_defaults(func=command.run)

    p = sub.add_parser('watch', help='print notifications and capability '
                       'reports as they arrive, one JSON object a line')
    p.add_argument('--seconds', type=float,
                   help='stop after this long (default: until Ctrl-C)')
    p.set_defaults(func=cmd_watch)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    oslo_args, argv = _split_config_args(argv)
    args, rest = build_parser().parse_known_args(argv)
    try:
        conf = config.parse_args(oslo_args + rest)
    except cfg.Error as exc:  # a missing or malformed --config-file
        print('error: %s' % _first_line(exc), file=sys.stderr)
        return EXIT_USAGE
    missing = config.missing_config(conf, 'volume-worker-client')
    if missing:
        print('error: %s' % missing, file=sys.stderr)
        return EXIT_USAGE
    conf.set_default('use_stderr', True)  # stdout carries only the JSON
    config.setup_logging(conf, 'volume-worker-client')
    client = None
    try:
        client = Client(conf)
        return args.func(client, args)
    except ClientError as exc:
        print('error: %s' % exc, file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        print('error: %s' % _first_line(exc), file=sys.stderr)
        return EXIT_ERROR
    finally:
        if client is not None and client.stream is not None:
            client.stream.close()


def _split_config_args(argv):
    """Take oslo.config's file options out, wherever they stand."""
    oslo_args, others = [], []
    args = iter(argv)
    for arg in args:
        if arg in ('--config-file', '--config-dir'):
            oslo_args += [arg, next(args, '')]
        elif arg.startswith(('--config-file=', '--config-dir=')):
            oslo_args.append(arg)
        else:
            others.append(arg)
    return oslo_args, others


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == '__main__':
    sys.exit(main())

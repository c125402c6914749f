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
from volume_worker.cmd import output
from volume_worker import config
from volume_worker import timestamps


def cmd_watch(client, args):
    from volume_worker import events
    conf = client.conf
    stream = events.EventStream(
        conf.transport_url,
        control_exchange=conf.control_exchange,
        scheduler_topic=conf.scheduler_topic).start()
    # First, what this listens to; on stderr when stdout is JSON lines.
    print('watching %s: notifications (exchange %s, topics notifications.'
          'info/.warn/.error) and capability reports (exchange %s_fanout)%s'
          % (_without_password(conf.transport_url), conf.control_exchange,
             conf.scheduler_topic, '' if args.seconds else '; Ctrl-C stops'),
          file=sys.stdout if output.current() == output.TABLE else sys.stderr,
          flush=True)
    stop = time.monotonic() + args.seconds if args.seconds else None
    try:
        while stop is None or time.monotonic() < stop:
            for event in stream.poll(0.5):
                event['timestamp'] = timestamps.iso(event.get('timestamp'))
                if output.current() == output.TABLE:
                    print(event_line(event), flush=True)
                else:
                    _print(event)
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    return 0


def event_line(event):
    """One readable line of an event, for a terminal."""
    if event.get('kind') == 'capabilities':
        caps = event.get('capabilities') or {}
        return '%s  capabilities  %s  free %s of %s GiB' % (
            event.get('timestamp'), event.get('host'),
            caps.get('free_capacity_gb'), caps.get('total_capacity_gb'))
    payload = event.get('payload') or {}
    resource = next((payload[k] for k in ('volume_id', 'snapshot_id',
                                          'group_id', 'group_snapshot_id',
                                          'backup_id') if payload.get(k)),
                    payload.get('host') or '-')
    line = '%s  %s  %s  %s' % (event.get('timestamp'),
                               event.get('event_type') or event.get('kind'),
                               resource, payload.get('status') or '-')
    if payload.get('percent') is not None:
        line += '  %s%%' % payload['percent']
    if payload.get('reason'):
        line += '  %s%s' % ('refused: ' if payload.get('refused') else '',
                            payload['reason'])
    return line


def _without_password(url):
    import re
    return re.sub(r'(://[^:/@]*:)[^@/]*@', r'\1***@', url)


DESCRIPTION = """\
Drive a volume worker over RabbitMQ, as a scheduler or an API tier would:
one subcommand per RPC method of volume_worker.rpcapi (create_snapshot ->
create-snapshot), the resource id first. Casts return at once ("requested");
--wait follows the operation to its final status and exits non-zero with the
reason when it fails or is refused. The client reads the worker's own
configuration file for the broker (transport_url), the host and backends
(the default target is HOST@<first enabled backend>); it never opens the
worker's database.

Output: a table on a terminal; JSON (one object a line) with --json or when
stdout is not a terminal. Timestamps are ISO 8601 UTC
(2026-11-25T13:05:27.123456Z)."""

EPILOG = """\
examples:
  volume-worker-client --config-file /etc/volume-worker/volume-worker.conf \\
      create --size 1 --wait
  volume-worker-client --config-file FILE list --json | jq '.[].status'
  volume-worker-client --config-file FILE watch
  volume-worker-client --config-file FILE SUBCOMMAND --help"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog='volume-worker-client', description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _config_arguments(parser)
    output.add_argument(parser)
    sub = parser.add_subparsers(dest='command', required=True,
                                metavar='SUBCOMMAND')
    for command in COMMANDS:
        p = sub.add_parser(command.name, aliases=list(command.aliases),
                           help=command.help, description=command.help)
        output.add_argument(p)
        if command.subject and not command.new:
            p.add_argument(command.subject[1], metavar=command.subject[1].upper())
        for flags, options in command.args:
            p.add_argument(*flags, **options)
        p.add_argument('--backend', help='host@backend (default: this '
                       'config\'s host and first enabled backend)')
        p.set_defaults(func=command.run)

    p = sub.add_parser('watch', help='print notifications and capability '
                       'reports as they arrive (a line each)')
    output.add_argument(p)
    p.add_argument('--seconds', type=float,
                   help='stop after this long (default: until Ctrl-C)')
    p.set_defaults(func=cmd_watch)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    oslo_args, argv = _split_config_args(argv)
    args, rest = build_parser().parse_known_args(argv)
    output.configure(args)
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


def _config_arguments(parser):
    """--config-file and --config-dir in --help (oslo.config reads them)."""
    group = parser.add_argument_group('configuration')
    group.add_argument('--config-file', metavar='FILE', action='append',
                       help='the worker\'s configuration file (may be '
                            'repeated; default: volume-worker.conf in '
                            '~/.volume-worker/, ~/, /etc/volume-worker/, '
                            '/etc/)')
    group.add_argument('--config-dir', metavar='DIR', action='append',
                       help='a directory of *.conf files read after '
                            '--config-file')


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

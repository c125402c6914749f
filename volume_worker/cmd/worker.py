"""``volume-worker``: run the volume worker service until SIGTERM."""

import os
import signal
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from volume_worker import concurrency
    from volume_worker import config

    mode = config.early_option(argv, 'executor', concurrency.EVENTLET)
    threads = int(config.early_option(argv, 'driver_thread_pool_size', 64))
    concurrency.setup(mode, driver_threads=threads)

    from oslo_log import log as logging

    conf = config.parse_args(argv)
    config.setup_logging(conf)
    if conf.workers > 1:
        from volume_worker import launcher
        log = logging.getLogger('volume_worker')
        log.info('volume-worker on %s: %d worker processes', conf.host,
                 conf.workers)
        code = launcher.run(conf, conf.workers,
                            lambda index: _serve_member(conf, index))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return _serve(conf)


def _serve_member(conf, index):
    """Child ``index`` of ``workers = N``: member HOST-INDEX of the cluster."""
    from volume_worker import cluster
    from volume_worker import launcher
    if not conf.cluster:
        cluster.set_implicit_cluster(conf.host)
    conf.set_override('host', launcher.member_host(conf.host, index))
    if index > 0:  # one health listener (child 0's) per [health] bind
        conf.set_override('bind', None, group='health')
    return _serve(conf)


def _serve(conf):
    from oslo_log import log as logging
    from volume_worker import concurrency
    from volume_worker import service
    from volume_worker import systemd
    from volume_worker import diagnostics
    diagnostics.setup(conf)  # a Guru Meditation report on SIGUSR2
    log = logging.getLogger('volume_worker')
    from volume_worker import broker_tls
    from volume_worker import privileges
    try:
        privileges.secure_files(conf)
        privileges.drop_to_user(conf)
        broker_tls.check(conf)
    except (privileges.PrivilegeError, broker_tls.UntrustedBroker) as exc:
        log.error('volume-worker cannot start: %s', exc)
        return 2
    stop_requested = []

    def request_stop(signum, _frame):
        log.info('Signal %s received: draining', signum)
        stop_requested.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    notifier = systemd.notifier()
    notifier.status('starting: drivers set up, journals recovered')
    worker = service.WorkerService(conf)
    from volume_worker import exception
    try:
        worker.start()
    except exception.WorkerException as exc:  # a refusal: say why, once
        log.error('volume-worker cannot start: %s', exc)
        notifier.status('failed to start: %s' % exc)
        return 1
    except Exception:
        log.exception('volume-worker failed to start')
        notifier.status('failed to start: see the log')
        return 1
    # Every backend is set up, recovered and consuming (or disabled).
    notifier.ready(worker.status_line())
    while not stop_requested:
        concurrency.sleep(0.2)
    notifier.stopping()
    drained = worker.stop(graceful=True)
    log.info('volume-worker stopped (%s)',
             'drained' if drained else 'unfinished work journaled')
    sys.stdout.flush()
    sys.stderr.flush()
    # Library threads (broker heartbeats, executors) must not hold the exit.
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())

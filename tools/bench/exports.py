"""Section 4b: start-up of a file backend whose volumes are iSCSI exports.

A private tgtd holds one target per volume (CHAP up to ``CHAP_LIMIT``);
the worker's database lists the volumes as exported. Measured: the time to listening and the
time the background check of every export takes, with tgtd still holding
the targets (a worker restart) and with tgtd restarted empty (a host
reboot: every target is made again). Beside them, the driver's old way
(``ensure_export`` per volume, each listing every target) against its
batch (one listing per batch), on a sample; and one CHAP export + unexport
cycle through tgtd's control protocol (in-process, and through the privsep
daemon of an unprivileged worker) against the same requests as ``tgtadm``
processes (the driver's earlier way, the password on their command line).

Two limits of tgtd 1.0.85 shape the run. Its rdwr store starts
``nr_iothreads`` threads (16 by default) per LUN: 10,000 LUNs would be
160,000 threads, past this machine's pid_max (32,768), and every fork on
the machine fails (seen). The private tgtd runs with ``-t 1``. And tgtd
finds a new CHAP account's id by a linear search per candidate id,
quadratic in the accounts it holds (about 16 ms per account at 1,500
accounts, 90 ms at 4,500 here): above ``CHAP_LIMIT`` exports the targets
are made without CHAP, and the run says so.
"""

import datetime
import os
import re
import time
import types
import uuid

SECTION = '4b start-up with iSCSI exports'
ENSURED = re.compile(r'(\d+) exports ensured, (\d+) failed, \d+ left to the '
                     r'operations holding them, in ([0-9.]+)s')
PREFIX = 'iqn.2010-10.org.volume-worker.bench:'
SAMPLE = 100
CHAP_LIMIT = 2000


def measure(bench, results, count):
    from volume_worker.testing import tgtd as tgtd_process
    scratch = os.path.join(bench.state, 'exports')
    os.makedirs(scratch, exist_ok=True)
    try:
        daemon = tgtd_process.Tgtd.on_free_ports(scratch, iothreads=1)
        daemon.start()
    except (tgtd_process.TgtdUnavailable, OSError) as exc:
        results.skip(SECTION, 'tgtd unavailable: %s' % exc)
        return
    try:
        _measure(bench, results, count, daemon, scratch)
    finally:
        daemon.discard()


CYCLES = 30


def _tgtadm_cycle(daemon, iqn, path, user, secret):
    """The export and unexport as tgtadm processes (the earlier way)."""
    show = ('--op', 'show', '--mode', 'target')
    daemon.tgtadm(*show)
    daemon.tgtadm('--op', 'new', '--mode', 'account', '--user', user,
                  '--password', secret)
    daemon.tgtadm('--op', 'new', '--mode', 'target', '--tid', 1, '-T', iqn)
    daemon.tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', 1,
                  '--lun', 1, '-b', path)
    daemon.tgtadm('--op', 'update', '--mode', 'logicalunit', '--tid', 1,
                  '--lun', 1, '--params', 'thin_provisioning=1')
    daemon.tgtadm('--op', 'bind', '--mode', 'account', '--tid', 1,
                  '--user', user)
    daemon.tgtadm('--op', 'bind', '--mode', 'target', '--tid', 1, '-I', 'ALL')
    daemon.tgtadm(*show)
    daemon.tgtadm('--op', 'delete', '--mode', 'target', '--force',
                  '--tid', 1)
    daemon.tgtadm('--op', 'delete', '--mode', 'account', '--user', user)


def _protocol_cycle(tgt, iqn, path, user, secret):
    tgt.ensure_target(iqn, path, user, secret)
    tgt.remove_target(iqn, user)


def _export_cycles(results, daemon, directory):
    """ms per export + unexport cycle, the three ways alternating."""
    from oslo_config import cfg
    from drivers import privileged
    from drivers import tgt as tgt_module
    from volume_worker import privileges
    path = os.path.join(directory, 'cycle-lun')
    with open(path, 'wb') as f:
        f.truncate(1 << 30)
    tgt = tgt_module.TgtAdm(daemon.control_port)
    args = (PREFIX + 'cycle', path, 'cycleuser', 'cyclesecret0123')
    privileges.start_privsep_daemons(cfg.CONF, [privileged.tgt])
    try:
        ways = {'tgtadm processes': lambda: _tgtadm_cycle(daemon, *args),
                'protocol, in-process': lambda: _in_process(
                    privileged, _protocol_cycle, tgt, *args),
                'protocol, privsep daemon': lambda: _protocol_cycle(
                    tgt, *args)}
        times = {name: [] for name in ways}
        for _ in range(CYCLES):
            for name, cycle in ways.items():
                t0 = time.perf_counter()
                cycle()
                times[name].append(time.perf_counter() - t0)
    finally:
        privileged.tgt.stop()
        privileged.in_process()
        os.unlink(path)
    medians = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    for name, median in medians.items():
        results.add(SECTION, 'one CHAP export + unexport, %s (median of %d)'
                    % (name, CYCLES), median * 1e3, 'ms')
    base = medians['tgtadm processes']
    results.note('%s: export + unexport through tgtd\'s protocol takes '
                 '%.2fx (in-process) and %.2fx (privsep daemon) of the time '
                 'tgtadm processes take, measured alternating in one run'
                 % (SECTION, medians['protocol, in-process'] / base,
                    medians['protocol, privsep daemon'] / base))


def _in_process(privileged, fn, *args):
    privileged.tgt.set_client_mode(False)
    try:
        fn(*args)
    finally:
        privileged.tgt.set_client_mode(True)


def _options(daemon, directory, chap=True):
    return {'volume_driver': 'drivers.file.FileVolumeDriver',
            'volume_backend_name': 'file1', 'file_volume_dir': directory,
            'target_protocol': 'iscsi', 'use_chap_auth': chap,
            'target_ip_address': '127.0.0.1',
            'target_port': daemon.portal_port, 'target_prefix': PREFIX,
            'file_tgt_control_port': daemon.control_port}


def _driver(options):
    from oslo_config import cfg
    from drivers import configuration
    from drivers import file as file_driver
    conf = cfg.ConfigOpts()
    section = configuration.Configuration([], config_group='file1', conf=conf)
    driver = file_driver.FileVolumeDriver(configuration=section)
    for name, value in options.items():
        if name != 'volume_driver':
            conf.set_override(name, value, group='file1')
    driver.do_setup(None)
    return driver


def _export_volumes(driver, count, chap):
    """``count`` 1 GiB sparse volumes with exports (CHAP or not), as
    create_export leaves them, made in one batch (one listing of tgtd's
    targets)."""
    from drivers import file_export
    volumes = []
    for _ in range(count):
        volume = types.SimpleNamespace(id=str(uuid.uuid4()), size=1,
                                       provider_location=None,
                                       provider_auth=None)
        driver.create_volume(volume)
        iqn = driver._target_iqn(volume)
        volume.provider_location = driver._iscsi_location(
            iqn, file_export._ISCSI_LUN)
        if chap:
            user = file_export._random_text(file_export._CHAP_USER_LENGTH)
            secret = file_export._random_text(
                file_export._CHAP_SECRET_LENGTH)
            volume.provider_auth = driver._chap_auth(user, secret)
        volumes.append(volume)
    started = time.monotonic()
    _updates, failures = driver.ensure_exports(None, volumes)
    if failures:
        raise RuntimeError('%d exports failed: %s' % (
            len(failures), next(iter(failures.values()))))
    return volumes, time.monotonic() - started


def _insert(db_path, backend, volumes):
    import scale
    now = datetime.datetime.utcnow()
    scale.insert_rows(db_path, [
        {'id': v.id, 'size': 1, 'status': 'available',
         'host': backend + '#file1', 'attach_status': 'detached',
         'provider_location': v.provider_location,
         'provider_auth': v.provider_auth,
         # as a worker that ran before left them (update_provider_info)
         'provider_id': 'volume-%s' % v.id, 'metadata': {},
         'admin_metadata': {}, 'created_at': now, 'updated_at': now,
         'deleted': False} for v in volumes])


def _timed_start(worker, timeout):
    """(seconds to 'started on', seconds to the exports line, its figures)."""
    offset = len(worker.log_text()) if os.path.exists(worker.log_path) else 0
    t0 = time.monotonic()
    worker.start(wait_ready=False)
    worker.wait_for_log('volume-worker started on', timeout, start=offset)
    listening = time.monotonic() - t0
    worker.wait_for_log('exports ensured', timeout, start=offset)
    checked = time.monotonic() - t0
    match = ENSURED.search(worker.log_text()[offset:])
    return listening, checked, match.groups() if match else None


def _measure(bench, results, count, daemon, scratch):
    directory = os.path.join(scratch, 'volumes')
    os.makedirs(directory, exist_ok=True)
    chap = count <= CHAP_LIMIT
    kind = 'CHAP exports' if chap else 'exports (no CHAP)'
    if not chap:
        results.note('%s: %d exports are made without CHAP: tgtd 1.0.85 '
                     'adds accounts in time quadratic in the accounts it '
                     'holds (see the section docstring)' % (SECTION, count))
    options = _options(daemon, directory, chap)
    _export_cycles(results, daemon, directory)
    driver = _driver(options)
    volumes, made = _export_volumes(driver, count, chap)
    results.add(SECTION, 'making %d %s in one batch' % (count, kind), made,
                's')

    # The old way against the batch, on a sample, with every target there.
    # one by one, each export lists every target: seconds each at 10,000
    sample = volumes[:SAMPLE if count < 5000 else SAMPLE // 10]
    t0 = time.monotonic()
    for volume in sample:
        driver.ensure_export(None, volume)
    one_by_one = time.monotonic() - t0
    t0 = time.monotonic()
    driver.ensure_exports(None, sample)
    batch = time.monotonic() - t0
    results.add(SECTION, 'ensure_export one by one, %d of %d targets'
                % (len(sample), count), one_by_one * 1e3, 'ms')
    results.add(SECTION, 'ensure_exports batch, %d of %d targets'
                % (len(sample), count), batch * 1e3, 'ms')

    worker, path, settings = bench.new_worker(
        'exports', 'eventlet', backends={'file1': options})
    backend = settings['backends'][0]
    worker.start()
    worker.stop()
    _insert(os.path.join(os.path.dirname(path), 'volume-worker.sqlite'),
            backend, volumes)
    timeout = 120 + count / 20
    for label, restart_tgtd in (('targets in place', False),
                                ('tgtd restarted empty', True)):
        if restart_tgtd:
            daemon.kill()
            daemon.start()
        listening, checked, figures = _timed_start(worker, timeout)
        target = '<= 10 s' if count >= 10000 else None
        results.add(SECTION, 'start-up to "started on", %d %s, %s'
                    % (count, kind, label), listening, 's', target,
                    listening <= 10 if target else None)
        results.add(SECTION, 'start-up to every export checked, %d %s, %s'
                    % (count, kind, label), checked, 's')
        if figures is None or int(figures[0]) != count:
            results.note('%s: %s: the worker logged %s, expected %d exports '
                         'ensured' % (SECTION, label, figures, count))
        worker.stop()
    in_tgtd = len(daemon.targets())
    if in_tgtd != count:
        results.note('%s: tgtd holds %d targets after the restart, expected '
                     '%d' % (SECTION, in_tgtd, count))

"""Section 4: start-up and capability reports with many volumes in the database."""

import datetime
import re
import time
import uuid

SECTION = '4 scale'

RECOVERED = re.compile(r'recovered in ([0-9.]+)s')


def insert_volumes(db_path, backend, count):
    """Add ``count`` available volumes of ``backend`` straight into SQLite."""
    now = datetime.datetime.utcnow()
    insert_rows(db_path, [
        {'id': str(uuid.uuid4()), 'size': 1, 'status': 'available',
         'host': backend + '#pool1', 'attach_status': 'detached',
         'metadata': {}, 'admin_metadata': {}, 'created_at': now,
         'updated_at': now, 'deleted': False} for _ in range(count)])


def insert_rows(db_path, rows):
    """Insert volume rows straight into the SQLite database at ``db_path``."""
    import sqlalchemy as sa
    from volume_worker.db import models
    engine = sa.create_engine('sqlite:///%s' % db_path)
    try:
        with engine.begin() as conn:
            for i in range(0, len(rows), 2000):
                conn.execute(models.volumes.insert(), rows[i:i + 2000])
    finally:
        engine.dispose()


def timed_start(worker):
    """(seconds to 'recovered in', its own figure, seconds to 'started on')."""
    offset = len(worker.log_text()) if _exists(worker.log_path) else 0
    t0 = time.monotonic()
    worker.start(wait_ready=False)
    worker.wait_for_log('recovered in', 120, start=offset)
    t_recovered = time.monotonic() - t0
    worker.wait_for_log('volume-worker started on', 120, start=offset)
    t_started = time.monotonic() - t0
    match = RECOVERED.search(worker.log_text()[offset:])
    return t_recovered, float(match.group(1)) if match else None, t_started


def _exists(path):
    import os
    return os.path.exists(path)


def caps_call_ms(conf, backend, repeat):
    """p50 of get_capabilities(discover=True) over RPC, in ms."""
    from common import percentile
    from volume_worker import rpc, rpcapi
    api = rpcapi.VolumeAPI(conf)
    ctxt = rpc.admin_context()
    api.get_capabilities(ctxt, backend, discover=True)
    lat = []
    report = None
    for _ in range(repeat):
        t0 = time.monotonic()
        report = api.get_capabilities(ctxt, backend, discover=True)
        lat.append(time.monotonic() - t0)
    return percentile(lat, 50) * 1e3, report


def build_ms(db_path, backend, repeat):
    """p50 in ms of CapabilityReporter.build in-process on the same database,
    and beside it, alternating, the per-pool usage the report reads (its
    counters) and the sums over the rows it read before them."""
    from common import percentile
    from journal import make_fake_driver
    from volume_worker import reporting
    from volume_worker.db import api as db
    from volume_worker.db import pool_usage
    db.configure('sqlite:///%s' % db_path)
    try:
        reporter = reporting.CapabilityReporter(
            backend, make_fake_driver(backend), scheduler_api=None)
        reporter.build()
        timings = {'build': [], 'counters': [], 'rows': []}
        engine = db.get_engine()
        for _ in range(repeat):
            t0 = time.monotonic()
            reporter.build()
            timings['build'].append(time.monotonic() - t0)
            with engine.connect() as conn:
                t0 = time.monotonic()
                pool_usage.stored(conn, backend)
                timings['counters'].append(time.monotonic() - t0)
                t0 = time.monotonic()
                pool_usage.counted(conn, backend)
                timings['rows'].append(time.monotonic() - t0)
        return {k: percentile(v, 50) * 1e3 for k, v in timings.items()}
    finally:
        db.dispose()


def measure(conf, worker_factory, results, small=100, large=10000,
            repeat=30, huge=None):
    """Start a worker with ``small``, ``large`` (and ``huge``) volumes in its
    database."""
    worker, db_path, backend = worker_factory()
    try:
        worker.start()
        worker.stop()
        loaded = 0
        for count in [n for n in (small, large, huge) if n]:
            insert_volumes(db_path, backend, count - loaded)
            loaded = count
            recovered, own, started = timed_start(worker)
            target = '<= 10 s' if count == large else None
            results.add(SECTION, 'start-up to "recovered in", %d volumes'
                        % count, recovered, 's', target,
                        recovered <= 10 if target else None)
            results.add(SECTION, 'recovery itself (logged), %d volumes'
                        % count, own, 's')
            results.add(SECTION, 'start-up to "started on", %d volumes'
                        % count, started, 's')
            call_ms, report = caps_call_ms(conf, backend, repeat)
            results.add(SECTION, 'get_capabilities(discover) call p50, %d '
                        'volumes' % count, call_ms, 'ms')
            built = build_ms(db_path, backend, repeat)
            results.add(SECTION, 'CapabilityReporter.build p50, %d volumes'
                        % count, built['build'], 'ms')
            results.add(SECTION, 'pool usage from the counters p50, %d '
                        'volumes' % count, built['counters'], 'ms')
            results.add(SECTION, 'pool usage summed over the rows (before '
                        'the counters) p50, %d volumes' % count,
                        built['rows'], 'ms')
            results.add(SECTION, 'rows / counters, %d volumes' % count,
                        built['rows'] / max(built['counters'], 1e-6), 'x')
            allocated = report.get('allocated_capacity_gb')
            if allocated != count:
                results.note('capability report of %s says %s GiB allocated, '
                             'expected %d' % (backend, allocated, count))
            worker.stop()
    finally:
        worker.stop()

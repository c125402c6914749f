"""Three workers of one cluster on one file backend: PostgreSQL, Redis, RabbitMQ.

Every member consumes the cluster's queue; a cast is served by one of
them. A member killed with operations in flight loses them to a peer once
its lease expires: the peer claims each journal row, waits for the dead
member's Redis locks to expire, and resumes it (create and delete resume).
Each worker's file driver appends every backend call it makes to one
shared log, which says who served what.
"""

import collections
import os
import shutil
import socket
import uuid

import pytest

from drivers import file_layout
from tests.conftest import make_postgres_database
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import process
from volume_worker.testing import state

# lease_timeout (s; Redis locks expire with it). Short, for a short test,
# but long enough that a member busy with a burst on a loaded machine
# renews its leases and locks in time (tooz beats every half of it).
LEASE = 8
MEMBERS = 3
CREATES = 300
DELAY = 6  # seconds the slow calls of the crash round take


def _redis_up():
    try:
        with socket.create_connection(('127.0.0.1', 6379), timeout=1):
            return True
    except OSError:
        return False


class Cluster:
    def __init__(self, base, url):
        from volume_worker import rpc
        from volume_worker import rpcapi
        unique = uuid.uuid4().hex[:8]
        self.name = 'cl-%s' % unique
        self.backend = '%s@file1' % self.name
        shared = os.path.join(base, 'shared')
        self.volume_dir = os.path.join(shared, 'volumes')
        self.control = os.path.join(shared, 'faults.json')
        self.calls_path = os.path.join(shared, 'calls.log')
        os.makedirs(self.volume_dir)
        self.url = url
        self.configs = []
        self.members = []
        for index in range(MEMBERS):
            path, settings = process.write_config(
                os.path.join(base, 'm%d' % index), database=url,
                # No lock_timeout in the URL: a cluster's Redis locks
                # expire with its leases (lease_timeout).
                coordination_url='redis://127.0.0.1:6379',
                extra_default={'cluster': self.name,
                               'lease_timeout': LEASE},
                backends={'file1': {
                    'volume_driver':
                        'volume_worker.testing.drivers.FaultyFileDriver',
                    'volume_backend_name': 'file1',
                    'file_volume_dir': self.volume_dir,
                    'target_protocol': 'local',
                    'fault_control_file': self.control,
                    'fault_call_log': self.calls_path}})
            self.configs.append(path)
            self.members.append(settings['backends'][0])
        self.workers = [process.WorkerProcess(path) for path in self.configs]
        for worker in self.workers:  # together: start-up is the slow part
            worker.start(wait_ready=False)
        for worker in self.workers:
            worker.wait_for_log('volume-worker started on', 90)
        self.db = state.WorkerDB(url)
        self.api = rpcapi.VolumeAPI(process.client_config(self.configs[0]),
                                    timeout=30)
        self.ctx = rpc.admin_context()

    def cast_create(self, volume_id=None):
        from volume_worker import objects
        volume = objects.Volume(id=volume_id or str(uuid.uuid4()), size=1,
                                host=self.backend, metadata={},
                                display_name='clustered')
        self.api.create_volume(self.ctx, self.backend, volume)
        return volume.id

    def cast_delete(self, volume_id):
        self.api.delete_volume(self.ctx, self.backend, volume_id)

    def calls(self):
        """[(member, method, volume id)] in the order they were made."""
        if not os.path.exists(self.calls_path):
            return []
        with open(self.calls_path) as f:
            return [tuple(line.split()) for line in f if line.strip()]

    def statuses(self, ids):
        return {vid: (self.db.volume(vid) or {}) for vid in ids}

    def files(self):
        return {name[len(file_layout.VOLUME_PREFIX):]
                for name in os.listdir(self.volume_dir)
                if name.startswith(file_layout.VOLUME_PREFIX)}

    def assert_backend_matches_database(self):
        live = {v['id'] for v in self.db.live_volumes()}
        assert self.files() == live

    def close(self):
        for worker in self.workers:
            worker.stop()
        self.db.close()


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    if not _redis_up():
        pytest.skip('Redis is not running on 127.0.0.1:6379')
    url, drop = make_postgres_database()
    c = Cluster(str(tmp_path_factory.mktemp('cluster')), url)
    try:
        yield c
    finally:
        c.close()
        drop()


def test_casts_to_the_cluster_are_spread_and_each_served_once(cluster):
    ids = [cluster.cast_create() for _ in range(CREATES)]
    state.wait_until(
        lambda: all(v.get('status') == VolumeStatus.AVAILABLE
                    for v in cluster.statuses(ids).values()),
        120, '%d creates' % CREATES)
    creates = collections.Counter(
        vid for _member, method, vid in cluster.calls()
        if method == 'create_volume')
    assert set(creates) >= set(ids)
    twice = [vid for vid in ids if creates[vid] != 1]
    assert twice == [], [line for w in cluster.workers
                         for line in w.log_text().splitlines()
                         if 'taken over' in line or 'lease' in line][:10]
    served = collections.Counter(
        member for member, method, vid in cluster.calls()
        if method == 'create_volume' and vid in set(ids))
    assert set(served) == set(cluster.members), served  # each took some
    # Resources carry the cluster's name; reports agree across members.
    assert {v['host'].partition('#')[0]
            for v in cluster.statuses(ids).values()} == {cluster.backend}
    assert not cluster.db.operations()
    cluster.assert_backend_matches_database()


def test_a_killed_members_operations_are_finished_by_a_peer(cluster):
    # Operations that last DELAY seconds inside the backend on every
    # member: creates (inside create_volume) and deletes (delete_volume).
    victims_of_delete = [cluster.cast_create() for _ in range(6)]
    state.wait_until(
        lambda: all(v.get('status') == VolumeStatus.AVAILABLE for v in
                    cluster.statuses(victims_of_delete).values()),
        60, 'volumes to delete')
    creates = [str(uuid.uuid4()) for _ in range(6)]
    faults = {vid: {'create_volume': DELAY} for vid in creates}
    faults.update({vid: {'delete_volume': DELAY}
                   for vid in victims_of_delete})
    faulty.control(cluster.control, faults)
    try:
        for vid in creates:
            cluster.cast_create(vid)
        for vid in victims_of_delete:
            cluster.cast_delete(vid)
        markers = ([faulty.marker(cluster.control, 'create_volume', v)
                    for v in creates] +
                   [faulty.marker(cluster.control, 'delete_volume', v)
                    for v in victims_of_delete])
        state.wait_until(lambda: all(os.path.exists(m) for m in markers),
                         60, 'every member inside its backend calls')
        rows = cluster.db.operations()
        victim = collections.Counter(r['owner'] for r in rows).most_common(
            1)[0][0]
        taken = {r['id']: r for r in rows if r['owner'] == victim}
        index = cluster.members.index(victim)
        cluster.workers[index].kill()
    finally:
        faulty.control(cluster.control, {})
        shutil.rmtree(cluster.control + '.inside', ignore_errors=True)
    # The peers finish (or revert) everything: no row left, nothing stuck.
    state.wait_until(lambda: not cluster.db.operations(), 90,
                     'the journal emptied by the peers')
    for vid, row in cluster.statuses(creates).items():
        assert row.get('status') == VolumeStatus.AVAILABLE, (vid, row)
    for vid, row in cluster.statuses(victims_of_delete).items():
        assert row.get('deleted'), (vid, row)
    # The victim's operations were resumed by exactly one peer each.
    calls = cluster.calls()
    survivors = set(cluster.members) - {victim}
    for row in taken.values():
        [(_n, _t, vid)] = row['resources']
        method = 'create_volume' if vid in creates else 'delete_volume'
        by = [m for m, meth, v in calls if meth == method and v == vid]
        assert by[0] == victim and len(by) == 2 and by[1] in survivors, by
    logs = ''.join(w.log_text() for i, w in enumerate(cluster.workers)
                   if i != index)
    assert logs.count('taken over from %s' % victim) == len(taken)
    # Operations of the live members ran once, on their member only.
    for vid in set(creates) | set(victims_of_delete):
        if any(vid == r['resources'][0][2] for r in taken.values()):
            continue
        method = 'create_volume' if vid in creates else 'delete_volume'
        assert len([1 for _m, meth, v in calls
                    if meth == method and v == vid]) == 1, vid
    cluster.assert_backend_matches_database()


# -- workers = N on one host ----------------------------------------------------

def _children(pid):
    with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
        return sorted(int(p) for p in f.read().split())


@pytest.mark.parametrize('executor', ['eventlet', 'threading'])
def test_workers_n_serves_one_backend_and_restarts_a_dead_child(tmp_path,
                                                                executor):
    from volume_worker import objects
    from volume_worker import rpc
    from volume_worker import rpcapi
    path, settings = process.write_config(
        str(tmp_path / 'state'), executor=executor,
        extra_default={'workers': 2},
        backends={'file1': {'volume_driver': 'drivers.file.FileVolumeDriver',
                            'volume_backend_name': 'file1',
                            'file_volume_dir': str(tmp_path / 'volumes'),
                            'target_protocol': 'local'}})
    host = settings['host']
    backend = settings['backends'][0]  # host@file1: the children's cluster
    for index in range(2):
        process.CONFIGURED['queues'].add(
            'volume-worker.%s-%d@file1' % (host, index))
    worker = process.WorkerProcess(path).start(wait_ready=False)
    db = state.WorkerDB('sqlite:///%s/volume-worker.sqlite'
                        % (tmp_path / 'state'))
    try:
        state.wait_until(lambda: worker.log_text().count(
            'volume-worker started on') == 2, 90, 'both children started')
        services = {s['host']: s['cluster_name'] for s in db.services()}
        assert services == {'%s-0@file1' % host: backend,
                            '%s-1@file1' % host: backend}
        api = rpcapi.VolumeAPI(process.client_config(path), timeout=30)
        ctx = rpc.admin_context()
        volume = objects.Volume(id=str(uuid.uuid4()), size=1, host=backend,
                                metadata={})
        api.create_volume(ctx, backend, volume)
        state.wait_until(lambda: db.status(volume.id) ==
                         VolumeStatus.AVAILABLE, 30, 'create')
        first, second = _children(worker.pid)
        os.kill(second, 9)
        state.wait_until(lambda: worker.log_text().count(
            'volume-worker started on') == 3, 90, 'the child restarted')
        assert 'died (signal 9); starting it again' in worker.log_text()
        now = _children(worker.pid)
        assert first in now and second not in now and len(now) == 2
        # Reports of both children count the backend's volumes alike.
        for member in services:
            caps = api.get_capabilities(ctx, member)
            assert caps['allocated_capacity_gb'] == 1, (member, caps)
        api.delete_volume(ctx, backend, volume.id)
        state.wait_until(lambda: db.volume(volume.id)['deleted'], 30,
                         'delete')
        assert worker.terminate(60) == 0
        assert 'All 2 workers stopped' in worker.log_text()
    finally:
        worker.stop()
        db.close()


def test_a_driver_without_active_active_refuses_to_run_clustered(tmp_path):
    path, _settings = process.write_config(
        str(tmp_path / 'state'), extra_default={'workers': 2},
        backends={'min1': {
            'volume_driver': 'tests.functional.minimal_driver.MinimalDriver',
            'volume_backend_name': 'min1'}})
    # The driver lives in the tests: the worker imports it from the checkout.
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    worker = process.WorkerProcess(path).start(
        wait_ready=False, env={'PYTHONPATH': root})
    try:
        assert worker.proc.wait(90) != 0
        text = worker.log_text()
        assert 'cannot start' in text and 'SUPPORTS_ACTIVE_ACTIVE' in text
        assert 'workers = 2' in text
    finally:
        worker.stop()


# -- the lock backend lost and back ----------------------------------------------

class _Redis:
    """A redis-server of this test's own, on a free port."""

    def __init__(self, directory):
        import shutil
        if not shutil.which('redis-server'):
            pytest.skip('redis-server is not installed')
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self.directory = directory
        self.proc = None

    def start(self):
        import subprocess
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--save', '',
             '--appendonly', 'no', '--dir', self.directory],
            stdout=subprocess.DEVNULL)
        state.wait_until(self._answers, 10, 'redis-server answering')

    def _answers(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), 1):
                return True
        except OSError:
            return False

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def test_a_member_without_its_lock_backend_leaves_requests_queued(tmp_path):
    from volume_worker import objects
    from volume_worker import rpc
    from volume_worker import rpcapi
    redis = _Redis(str(tmp_path))
    redis.start()
    name = 'cl-%s' % uuid.uuid4().hex[:8]
    path, settings = process.write_config(
        str(tmp_path / 'state'),
        coordination_url='redis://127.0.0.1:%d' % redis.port,
        extra_default={'cluster': name, 'lease_timeout': 3})
    backend = '%s@fake1' % name
    worker = process.WorkerProcess(path)
    db = state.WorkerDB('sqlite:///%s/volume-worker.sqlite'
                        % (tmp_path / 'state'))
    try:
        worker.start()
        api = rpcapi.VolumeAPI(process.client_config(path), timeout=30)
        ctx = rpc.admin_context()
        redis.kill()
        worker.wait_for_log('stops taking requests: its lock backend is '
                            'unreachable', 30)
        volume = objects.Volume(id=str(uuid.uuid4()), size=1, metadata={},
                                host=backend)
        api.create_volume(ctx, backend, volume)
        # Not taken: it waits in the cluster's queue (no refusal, no row).
        with pytest.raises(TimeoutError):
            state.wait_until(lambda: db.volume(volume.id), 3, 'a row')
        assert 'refused' not in worker.log_text()
        redis.start()
        worker.wait_for_log('takes requests again', 30)
        state.wait_until(lambda: db.status(volume.id) ==
                         VolumeStatus.AVAILABLE, 30, 'the queued create')
    finally:
        worker.stop()
        redis.kill()
        db.close()

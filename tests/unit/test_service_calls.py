"""do_cleanup while serving (never touching what is in flight), and log levels."""

import logging
import threading
import uuid

import pytest

from tests.unit.test_runner import available_volume  # noqa: F401 (fixtures)
from tests.unit.test_runner import coordinator  # noqa: F401
from tests.unit.test_runner import crash_in
from tests.unit.test_runner import driver  # noqa: F401
from tests.unit.test_runner import journal_rows
from tests.unit.test_runner import new_volume
from tests.unit.test_runner import notifier  # noqa: F401
from tests.unit.test_runner import ops  # noqa: F401
from tests.unit.test_runner import run_create
from tests.unit.test_runner import status_of
from volume_worker.endpoints import service as service_endpoints
from volume_worker import exception
from volume_worker.flows import create_volume
from volume_worker import objects
from volume_worker import operations
from volume_worker import recovery


def test_cleanup_resumes_an_orphaned_row(ops, monkeypatch):
    volume = new_volume()
    # The family's task template must come from the real task, not the
    # crashing one (it is built once, by the first run).
    create_volume.FAMILY.new_flow()
    crash_in(monkeypatch, create_volume.CreateExport)
    with pytest.raises(BaseException):
        run_create(ops, volume)
    monkeypatch.undo()
    assert len(journal_rows()) == 1
    summary = recovery.recover(ops, None, running=True)
    assert summary['resumed'] == 1 and journal_rows() == []
    assert status_of(volume.id) == 'available'


def test_cleanup_leaves_an_operation_in_flight_alone(ops, driver,
                                                    monkeypatch):
    """The row of a running create is waited for, then found gone."""
    inside, release = threading.Event(), threading.Event()
    original = driver.create_export

    def slow_export(*args, **kwargs):
        inside.set()
        release.wait(10)
        return original(*args, **kwargs)
    monkeypatch.setattr(driver, 'create_export', slow_export)
    volume = new_volume()
    creating = threading.Thread(target=run_create, args=(ops, volume))
    creating.start()
    assert inside.wait(10)
    assert status_of(volume.id) == 'creating'
    result = {}
    cleanup = threading.Thread(target=lambda: result.update(
        recovery.recover(ops, None, running=True)))
    cleanup.start()
    cleanup.join(0.5)
    assert cleanup.is_alive()  # waiting for the create's locks
    release.set()
    creating.join(10)
    cleanup.join(10)
    assert result == {'resumed': 0, 'failed': 0, 'reset': 0, 'unknown': 0}
    assert status_of(volume.id) == 'available'


def test_cleanup_resets_a_resource_stuck_without_a_row(ops):
    volume = new_volume()
    volume.status = objects.VolumeStatus.CREATING
    volume.create()  # as a process that journaled nothing would leave it
    summary = recovery.recover(ops, None, running=True,
                               resource_id=volume.id)
    assert summary['reset'] == 1
    assert status_of(volume.id) == 'error'
    other = new_volume()
    other.status = objects.VolumeStatus.CREATING
    other.create()
    assert recovery.recover(ops, None, running=True,
                            resource_id=volume.id)['reset'] == 0
    assert status_of(other.id) == 'creating'  # not the one asked for


def test_cleanup_requests_are_checked():
    check = service_endpoints._cleanup_target
    assert check(None) is None
    rid = str(uuid.uuid4())
    assert check({'resource_type': 'volume', 'resource_id': rid}) == rid
    for bad in ('volume', {'resource_type': 'disk'}, {'bogus': 1},
                {'resource_id': '../x'}):
        with pytest.raises(exception.InvalidInput):
            check(bad)
    assert set(operations.RESOURCE_TYPES) >= {'volume', 'snapshot'}


def test_log_levels_set_and_read_by_prefix():
    name = 'volume_worker.test_levels_%s' % uuid.uuid4().hex[:6]
    logging.getLogger(name + '.child')
    try:
        assert service_endpoints.set_levels(name, 'DEBUG') == 2
        levels = service_endpoints.get_levels(name)
        assert levels == {name: 'DEBUG', name + '.child': 'DEBUG'}
        service_endpoints.set_levels(name + '.child', 'ERROR')
        assert service_endpoints.get_levels(name)[name + '.child'] == 'ERROR'
    finally:
        for logger in (name, name + '.child'):
            logging.getLogger(logger).setLevel(logging.NOTSET)
    request = service_endpoints._log_request
    assert request({'prefix': 'x', 'level': 'debug'}) == ('x', 'DEBUG')
    assert request({}) == ('', None)
    for bad in ({'level': 'LOUD'}, {'prefix': 3, 'level': 'INFO'},
                {'prefix': 'x', 'colour': 1}, 'DEBUG'):
        with pytest.raises(exception.InvalidInput):
            request(bad, need_level=True)


def test_operations_read_capabilities_from_the_last_report(ops, driver,
                                                          monkeypatch):
    def hung(*args, **kwargs):
        raise AssertionError('the driver was asked')
    monkeypatch.setattr(driver, 'get_volume_stats', hung)
    monkeypatch.setattr(ops.reporter, 'last_stats',
                        {'multiattach': True}, raising=False)
    op = operations.Operation(create_volume.FAMILY, None, operations=ops)
    assert op.backend_reports('multiattach') is True
    assert op.backend_reports('online_extend_support') is None

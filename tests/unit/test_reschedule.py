"""A failed create goes back to the scheduler, in Cinder's shape, while attempts remain."""

import pytest

from drivers import exception as driver_exception
from tests.unit.test_runner import coordinator  # noqa: F401 (fixtures)
from tests.unit.test_runner import journal_rows
from tests.unit.test_runner import make_driver
from tests.unit.test_runner import make_ops
from tests.unit.test_runner import new_volume
from tests.unit.test_runner import notifier  # noqa: F401
from tests.unit.test_runner import run
from tests.unit.test_runner import status_of
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import create_volume
from volume_worker.flows import reschedule

MAX_ATTEMPTS = 3


class Scheduler:
    def __init__(self, fail=False):
        self.casts = []
        self.fail = fail

    def create_volume(self, ctxt, volume, request_spec, filter_properties):
        if self.fail:
            raise RuntimeError('broker gone')
        self.casts.append((volume, request_spec, filter_properties))


@pytest.fixture
def failing(database, notifier, coordinator):
    driver = make_driver(fake_fault_raise=['create_export'])
    ops = make_ops(driver, notifier, coordinator)
    ops.rescheduler = reschedule.Rescheduler(Scheduler(), MAX_ATTEMPTS)
    return ops, driver


def _create(ops, volume, attempts=1, retry=True):
    filter_properties = {'size': volume.size}
    if retry:
        filter_properties['retry'] = {'num_attempts': attempts,
                                      'backends': [ops.backend],
                                      'hosts': [ops.backend]}
    store = reschedule.request_store(
        {'volume_properties': {'size': volume.size}}, filter_properties)
    return run(ops, create_volume.FAMILY, volume=volume, store=store)


def test_a_reschedulable_failure_goes_back_to_the_scheduler(failing,
                                                            notifier):
    ops, driver = failing
    volume = new_volume(size=2)
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        _create(ops, volume, attempts=2)
    [(sent, request_spec, filter_properties)] = \
        ops.rescheduler.scheduler_api.casts
    assert sent.id == volume.id and sent.host is None
    assert sent.size == 2 and sent.status == 'creating'
    assert request_spec == {'volume_properties': {'size': 2},
                            'volume_id': volume.id}
    retry = filter_properties['retry']
    # The scheduler counts the attempt and adds the backend; we add why.
    assert retry['num_attempts'] == 2
    assert retry['backends'] == [ops.backend]
    assert any('fault injected into create_export' in line
               for line in retry['exc'])
    assert filter_properties['size'] == 2
    # Cleaned up: nothing on the backend, no row here, no journal.
    assert volume.id not in driver._volumes
    with pytest.raises(exception.VolumeNotFound):
        db.volume_get(volume.id, read_deleted=True)
    assert journal_rows() == []
    event = notifier.events[-1]
    assert event[0] == 'volume.create.error'


def test_past_scheduler_max_attempts_the_volume_is_error(failing):
    ops, driver = failing
    volume = new_volume()
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        _create(ops, volume, attempts=MAX_ATTEMPTS)
    assert ops.rescheduler.scheduler_api.casts == []
    assert status_of(volume.id) == 'error'
    assert volume.id not in driver._volumes


def test_without_retry_information_the_volume_is_error(failing):
    ops, _driver = failing
    volume = new_volume()
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        _create(ops, volume, retry=False)
    assert ops.rescheduler.scheduler_api.casts == []
    assert status_of(volume.id) == 'error'


def test_a_failure_every_backend_would_meet_is_not_rescheduled(
        failing, monkeypatch):
    ops, driver = failing

    def refuse(volume):
        raise driver_exception.InvalidVolume(reason='no such thing')
    monkeypatch.setattr(driver, 'create_volume', refuse)
    volume = new_volume()
    with pytest.raises(driver_exception.InvalidVolume):
        _create(ops, volume)
    assert ops.rescheduler.scheduler_api.casts == []
    assert status_of(volume.id) == 'error'


def test_a_scheduler_out_of_reach_leaves_the_volume_in_error(failing):
    ops, _driver = failing
    ops.rescheduler = reschedule.Rescheduler(Scheduler(fail=True),
                                             MAX_ATTEMPTS)
    volume = new_volume()
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        _create(ops, volume)
    assert status_of(volume.id) == 'error'


def test_a_successful_create_with_retry_information_is_untouched(
        database, notifier, coordinator):
    ops = make_ops(make_driver(), notifier, coordinator)
    ops.rescheduler = reschedule.Rescheduler(Scheduler(), MAX_ATTEMPTS)
    volume = new_volume()
    _create(ops, volume)
    assert status_of(volume.id) == 'available'
    assert ops.rescheduler.scheduler_api.casts == []


@pytest.mark.parametrize('request_spec, filter_properties', [
    ('spec', None), ({}, []), ({}, {'retry': {'num_attempts': -1}}),
    ({}, {'retry': {'num_attempts': True}}), ({}, {'retry': 'x'}),
    ({'big': 'x' * 70000}, None), ({'x': object()}, None),
])
def test_bad_scheduler_arguments_are_refused(request_spec,
                                             filter_properties):
    with pytest.raises(exception.InvalidInput):
        reschedule.request_store(request_spec, filter_properties)

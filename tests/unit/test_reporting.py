"""The capability reporter: report contents, stats that hang, capabilities, quiet skips."""

import time
import uuid

from oslo_config import cfg
import pytest

from drivers import configuration
from drivers import fake
from volume_worker import exception
from volume_worker import objects
from volume_worker import reporting

GROUP = 'fake1'
BACKEND = 'node@fake1'


class VendorFake(fake.FakeDriver):
    """A driver with vendor properties and defaults of its own."""

    def _init_vendor_properties(self):
        return {'acme:dedup': {'title': 'Dedup', 'type': 'boolean',
                               'description': 'Deduplicate blocks.'}}, 'acme'

    def get_default_filter_function(self):
        return 'volume.size < 500'

    def get_default_goodness_function(self):
        return '10'


class SchedulerAPI:
    def __init__(self):
        self.sent = []

    def update_service_capabilities(self, ctxt, service_name, host,
                                    capabilities, timestamp,
                                    cluster_name=None):
        self.sent.append((host, capabilities, timestamp, cluster_name))


def make(cls=VendorFake, conf=None, ready=True, **reporter_kwargs):
    conf = conf or cfg.ConfigOpts()
    driver = cls(configuration=configuration.Configuration(
        config_group=GROUP, conf=conf), host=BACKEND)
    conf.set_override('fake_pools', ['p1', 'p2'], group=GROUP)
    if ready:
        driver.do_setup(None)
        driver.set_initialized()
    api = SchedulerAPI()
    reporter_kwargs.setdefault('stats_timeout', 5)
    return reporting.CapabilityReporter(BACKEND, driver, api,
                                        **reporter_kwargs), driver, conf


def _volume(size, pool, **fields):
    volume = objects.Volume(id=str(uuid.uuid4()), size=size,
                            status='available',
                            host='%s#%s' % (BACKEND, pool), **fields)
    volume.create()
    return volume


def test_report_has_usage_per_pool_from_the_database(database):
    reporter, _driver, _conf = make(
        extra_capabilities={'site': 'north'})
    v1 = _volume(2, 'p1')
    _volume(3, 'p1')
    _volume(7, 'p2')
    snap = objects.Snapshot(id=str(uuid.uuid4()), volume_id=v1.id,
                            volume_size=2, host=v1.host, status='available')
    snap.create()
    _volume(100, 'p1').destroy()  # deleted: counts nowhere
    report = reporter.build()
    p1, p2 = report['pools']
    assert (p1['allocated_capacity_gb'], p1['provisioned_capacity_gb'],
            p1['total_volumes']) == (5, 7, 2)
    assert (p2['allocated_capacity_gb'], p2['provisioned_capacity_gb'],
            p2['total_volumes']) == (7, 7, 1)
    assert (report['allocated_capacity_gb'], report['total_volumes']) == \
        (12, 3)
    assert p1['site'] == p2['site'] == report['site'] == 'north'
    assert report['backend_state'] == 'up'
    assert report['timestamp'].endswith('Z')


def test_filter_and_goodness_backend_section_then_global_then_driver(
        database):
    reporter, _driver, conf = make()
    report = reporter.build()
    assert report['filter_function'] == 'volume.size < 500'  # driver's
    assert report['pools'][0]['goodness_function'] == '10'
    conf.set_override('goodness_function', '60')  # [DEFAULT]
    conf.set_override('filter_function', 'volume.size < 5', group=GROUP)
    report = reporter.build()
    assert report['filter_function'] == 'volume.size < 5'
    assert report['pools'][1]['filter_function'] == 'volume.size < 5'
    assert report['goodness_function'] == '60'
    conf.set_override('goodness_function', '70', group=GROUP)
    assert reporter.build()['pools'][0]['goodness_function'] == '70'


def test_capabilities_carry_standard_and_vendor_properties(database):
    reporter, driver, _conf = make()
    caps = reporter.capabilities()
    assert caps['vendor_prefix'] == 'acme'
    assert caps['properties']['acme:dedup']['type'] == 'boolean'
    assert 'thin_provisioning' in caps['properties']
    assert driver.get_prefixed_property('dedup') == 'acme:dedup'
    assert caps['backend_state'] in ('up', 'down')
    assert caps['total_volumes'] == 0
    # Without discover the driver is not asked again.
    driver.capabilities['marker'] = True
    assert reporter.capabilities()['marker'] is True
    assert 'marker' not in reporter.capabilities(discover=True)


def test_hanging_stats_report_down_then_up(database):
    conf = cfg.ConfigOpts()
    reporter, driver, conf = make(conf=conf, stats_timeout=0.3)
    conf.set_override('fake_fault_delay', {'get_volume_stats': '1'},
                      group=GROUP)
    conf.set_override('fake_fault_count', {'get_volume_stats': '1'},
                      group=GROUP)
    started = time.monotonic()
    report = reporter.build()
    assert time.monotonic() - started < 0.8
    assert report['backend_state'] == 'down'
    assert 'get_volume_stats has not returned' in \
        report['backend_state_reason']
    assert report['pools'] == [] and report['volume_backend_name'] == GROUP
    # No second call while the first still hangs: the report is at once.
    started = time.monotonic()
    assert reporter.build()['backend_state'] == 'down'
    assert time.monotonic() - started < 0.2
    assert reporter.last_stats == {}
    deadline = time.monotonic() + 5
    while reporter.build()['backend_state'] == 'down':
        assert time.monotonic() < deadline, 'never came back up'
        time.sleep(0.1)
    assert reporter.state_reason is None
    assert len(reporter.last_report['pools']) == 2
    assert reporter.last_stats['pools'][0]['pool_name'] == 'p1'


def test_failing_stats_keep_the_last_ones_and_say_why(database):
    reporter, _driver, conf = make()
    assert reporter.build()['backend_state'] == 'up'
    conf.set_override('fake_fault_raise', ['get_volume_stats'], group=GROUP)
    report = reporter.build()
    assert report['backend_state'] == 'down'
    assert 'fault injected' in report['backend_state_reason']
    assert len(report['pools']) == 2  # the last stats known
    assert all(p['backend_state'] == 'down' for p in report['pools'])


def test_capabilities_of_a_hung_backend_time_out(database):
    reporter, _driver, conf = make(stats_timeout=0.2)
    conf.set_override('fake_fault_delay', {'get_volume_stats': '1'},
                      group=GROUP)
    with pytest.raises(exception.BackendNotResponding):
        reporter.capabilities(discover=True)


def test_a_driver_not_set_up_reports_down_without_asking_it(database):
    reporter, driver, conf = make(ready=False)
    conf.set_override('fake_fault_raise', ['get_volume_stats'], group=GROUP)
    reporter.setup_failing('driver set-up failed (attempt 2): no array')
    report = reporter.build()
    assert report['backend_state'] == 'down'
    assert report['backend_state_reason'].endswith('no array')
    assert report['volume_backend_name'] == GROUP


def test_a_report_nobody_listens_to_is_skipped(database):
    reporter, _driver, _conf = make(probe=lambda: False)
    reporter.mark_dirty()
    reporter.publish()
    assert reporter.scheduler_api.sent == [] and reporter.skipped == 1
    assert not reporter.dirty
    reporter.probe = lambda: True
    reporter.publish()
    (host, caps, stamp, _cluster), = reporter.scheduler_api.sent
    assert host == BACKEND and caps['timestamp'] == stamp


def test_a_backend_not_serving_yet_reports_down(database):
    reporter, _driver, _conf = make()
    reporter.serving = False
    report = reporter.build()
    assert report['backend_state'] == 'down'
    assert report['backend_state_reason'].startswith('starting')
    assert len(report['pools']) == 2  # its stats nevertheless
    reporter.serving = True
    assert reporter.build()['backend_state'] == 'up'

"""Hostile input through the real broker: the worker never dies, never wedges.

Random and malformed arguments to every endpoint (hypothesis), objects of a
newer or unknown version, and raw bodies that are not oslo.messaging
envelopes at all, published straight onto the worker's queue.
"""

import json
import time

import kombu
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.functional.conftest import start_harness

ENDPOINTS = ('create_volume', 'delete_volume', 'get_volume', 'list_volumes',
             'create_snapshot', 'delete_snapshot', 'get_snapshot',
             'list_snapshots', 'get_capabilities',
             'publish_service_capabilities', 'no_such_method', '_get',
             'operations')

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) |
    st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10)

hostile_strings = st.sampled_from([
    '../../etc/passwd', '/etc/shadow', 'volume-../../x', '\x00', '',
    'a' * 5000, '00000000-0000-0000-0000-00000000000G', ' ' * 3])


@pytest.fixture(scope='module')
def harness(tmp_path_factory):
    h = start_harness(tmp_path_factory.mktemp('hostile'))
    yield h
    h.close()
    h.worker.stop()


def _alive_and_serving(h):
    assert h.worker.proc.poll() is None, h.worker.log_text()[-3000:]
    volume = h.new_volume()
    h.api.create_volume(h.ctx, h.backend(), volume)
    assert h.wait_status(volume.id, ['available']).status == 'available'


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(method=st.sampled_from(ENDPOINTS),
       kwargs=st.dictionaries(
           st.sampled_from(['volume', 'volume_id', 'snapshot', 'snapshot_id',
                            'force', 'unmanage_only', 'filters', 'marker',
                            'limit', 'discover', 'bogus']),
           json_values | hostile_strings, max_size=3),
       as_call=st.booleans())
def test_random_arguments_to_every_endpoint(harness, method, kwargs, as_call):
    client = harness.api.client.prepare(server=harness.backend(),
                                       timeout=10)
    if as_call:
        try:
            client.call(harness.ctx, method, **kwargs)
        except Exception as exc:
            # Every refusal names what was wrong; none is a timeout (which
            # would mean the worker choked on the request).
            assert 'MessagingTimeout' not in type(exc).__name__, exc
            assert str(exc).strip()
    else:
        client.cast(harness.ctx, method, **kwargs)


def test_worker_survives_the_random_arguments(harness):
    _alive_and_serving(harness)


@pytest.mark.parametrize('method', ['_get', '_place', 'operations',
                                    'reporter', 'driver', '__init__'])
def test_only_rpc_methods_are_reachable(harness, method):
    client = harness.api.client.prepare(server=harness.backend(), timeout=10)
    with pytest.raises(Exception) as err:
        client.call(harness.ctx, method)
    assert 'NoSuchMethod' in str(err.value), err.value


def _volume_primitive(h, **changes):
    from volume_worker import rpc
    primitive = rpc.get_serializer().serialize_entity(h.ctx, h.new_volume())
    primitive.update(changes)
    return primitive


def test_newer_or_unknown_object_versions_are_refused(harness):
    h = harness
    client = h.api.client.prepare(server=h.backend(), timeout=10)
    raw = client.call  # the serializer would refuse to send such objects
    for changes in ({'versioned_object.version': '9.9'},
                    {'versioned_object.name': 'Nonsense'},
                    {'versioned_object.namespace': 'other_project'}):
        primitive = _volume_primitive(h, **changes)
        with pytest.raises(Exception) as err:
            raw(h.ctx, 'create_volume', volume=primitive)
        assert 'Timeout' not in type(err.value).__name__
        h.api.client.prepare(server=h.backend()).cast(h.ctx, 'create_volume',
                                          volume=primitive)
    _alive_and_serving(h)


def _queue_name(h):
    return '%s.%s' % (h.conf.volume_topic, h.backend())


def _publish_raw(h, body, content_type='application/json'):
    url = h.conf.transport_url.replace('rabbit://', 'amqp://', 1)
    with kombu.Connection(url) as conn:
        producer = conn.Producer()
        producer.publish(body, exchange=h.conf.control_exchange,
                         routing_key=_queue_name(h),
                         content_type=content_type,
                         content_encoding='utf-8')


def _queue_depth(h):
    url = h.conf.transport_url.replace('rabbit://', 'amqp://', 1)
    with kombu.Connection(url) as conn:
        _, count, _ = conn.default_channel.queue_declare(
            _queue_name(h), passive=True)
        return count


@pytest.mark.parametrize('body,content_type', [
    (b'this is not json', 'application/json'),
    (b'\xff\xfe\x00garbage', 'application/octet-stream'),
    (json.dumps({'no': 'envelope'}), 'application/json'),
    (json.dumps({'oslo.version': '9.0', 'oslo.message': '{}'}),
     'application/json'),
    (json.dumps({'oslo.version': '2.0', 'oslo.message': 'not json'}),
     'application/json'),
    (json.dumps({'oslo.version': '2.0', 'oslo.message': json.dumps(
        {'method': 'create_volume', 'args': {'volume': 1}})}),
     'application/json'),
    (json.dumps({'x': 'y' * (4 * 1024 * 1024)}), 'application/json'),
], ids=['not-json', 'binary', 'no-envelope', 'envelope-9.0',
        'message-not-json', 'no-context', 'huge'])
def test_raw_malformed_bodies_are_dropped(harness, body, content_type):
    h = harness
    _publish_raw(h, body, content_type)
    deadline = time.monotonic() + 20
    while _queue_depth(h) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _queue_depth(h) == 0
    _alive_and_serving(h)


def test_oversized_metadata_and_path_like_names(harness):
    h = harness
    huge = h.new_volume(metadata={'k%d' % i: 'v' * 100 for i in range(1000)})
    h.api.create_volume(h.ctx, h.backend(), huge)
    # A path-like display name is only a label: never used in a path.
    odd = h.new_volume(display_name='../../etc/passwd')
    h.api.create_volume(h.ctx, h.backend(), odd)
    assert h.wait_status(odd.id, ['available']).display_name == \
        '../../etc/passwd'
    with pytest.raises(Exception) as err:
        h.api.get_volume(h.ctx, h.backend(), huge.id)
    assert 'NotFound' in type(err.value).__name__
    assert 'metadata exceeds 65536 bytes' in h.worker.log_text()
    for bad_host in ('other@fake1', '../x@y'):
        stray = h.new_volume(backend=bad_host)
        with pytest.raises(Exception) as err:
            h.api.client.prepare(server=h.backend(), timeout=10).call(
                h.ctx, 'create_volume', volume=stray)
        assert 'is not this backend' in str(err.value)

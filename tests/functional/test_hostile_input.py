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
    """Hostile casts change nothing, and the worker serves on."""
    h = harness
    before = {v.id for v in h.api.list_volumes(h.ctx, h.backend())}
    client = h.api.client.prepare(server=h.backend())
    for method in ENDPOINTS:
        for kwargs in ({}, {'bogus': 1}, {'volume': {'id': 'x'}},
                       {'volume_id': '../../etc/passwd'},
                       {'snapshot': [None] * 3, 'force': 'yes'},
                       {'filters': {'\x00': 'a' * 5000}, 'limit': -1}):
            client.cast(h.ctx, method, **kwargs)
    _alive_and_serving(h)
    after = {v.id for v in h.api.list_volumes(h.ctx, h.backend())}
    assert len(after - before) == 1 and before <= after


@pytest.mark.parametrize('method', ['_get', '_place', 'operations',
                                    'reporter', 'driver', '__init__'])
def test_only_rpc_methods_are_reachable(harness, method):
    import oslo_messaging as messaging
    client = harness.api.client.prepare(server=harness.backend(), timeout=10)
    with pytest.raises(messaging.RemoteError) as err:
        client.call(harness.ctx, method)
    assert err.value.exc_type == 'NoSuchMethod', err.value


def _volume_primitive(h, **changes):
    from volume_worker import rpc
    primitive = rpc.get_serializer().serialize_entity(h.ctx, h.new_volume())
    primitive.update(changes)
    return primitive


def test_newer_or_unknown_object_versions_are_refused(harness):
    from volume_worker import exception
    h = harness
    client = h.api.client.prepare(server=h.backend(), timeout=10)
    raw = client.call  # the serializer would refuse to send such objects
    for changes, error in (
            ({'versioned_object.version': '9.9'},
             exception.IncompatibleObjectVersion),
            ({'versioned_object.name': 'Nonsense'}, exception.InvalidInput),
            ({'versioned_object.namespace': 'other_project'},
             exception.InvalidInput)):
        primitive = _volume_primitive(h, **changes)
        with pytest.raises(error):
            raw(h.ctx, 'create_volume', volume=primitive)
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
    from volume_worker import exception
    h = harness
    huge = h.new_volume(metadata={'k%d' % i: 'v' * 100 for i in range(1000)})
    h.api.create_volume(h.ctx, h.backend(), huge)
    # A path-like display name is only a label: never used in a path.
    odd = h.new_volume(display_name='../../etc/passwd')
    h.api.create_volume(h.ctx, h.backend(), odd)
    assert h.wait_status(odd.id, ['available']).display_name == \
        '../../etc/passwd'
    with pytest.raises(exception.VolumeNotFound):
        h.api.get_volume(h.ctx, h.backend(), huge.id)
    with pytest.raises(exception.InvalidInput) as err:
        _call(h, 'create_volume', volume=huge)
    assert 'metadata exceeds 65536 bytes' in str(err.value)
    for bad_host in ('other@fake1', '../x@y'):
        stray = h.new_volume(backend=bad_host)
        with pytest.raises(exception.InvalidInput) as err:
            _call(h, 'create_volume', volume=stray)
        assert 'is not this backend' in str(err.value)


def _call(h, method, **kwargs):
    return h.api.client.prepare(server=h.backend(), timeout=10).call(
        h.ctx, method, **kwargs)


def _cast(h, method, **kwargs):
    h.api.client.prepare(server=h.backend()).cast(h.ctx, method, **kwargs)


def _raw(h):
    """An RPC client that sends its arguments as they are (no serializer)."""
    import oslo_messaging as messaging
    return messaging.get_rpc_client(
        h.api.transport, messaging.Target(topic=h.conf.volume_topic,
                                          server=h.backend()), timeout=10)


def _without(primitive, *fields):
    data = dict(primitive['versioned_object.data'])
    for name in fields:
        data.pop(name, None)
    primitive = dict(primitive, **{'versioned_object.data': data})
    primitive['versioned_object.changes'] = [
        c for c in primitive.get('versioned_object.changes', [])
        if c not in fields]
    return primitive


def test_a_volume_without_id_or_size_is_refused(harness):
    from volume_worker import exception
    h = harness
    for missing, reason in (('id', 'volume has no id'),
                            ('size', 'Volume has no size')):
        primitive = _without(_volume_primitive(h), missing)
        with pytest.raises(exception.InvalidInput) as err:
            _call(h, 'create_volume', volume=primitive)
        assert reason in str(err.value)
    snapshot = _without(_snapshot_primitive(h), 'id')
    with pytest.raises(exception.InvalidInput) as err:
        _call(h, 'create_snapshot', snapshot=snapshot)
    assert 'snapshot has no id' in str(err.value)
    assert 'NotImplementedError' not in h.worker.log_text()


def _snapshot_primitive(h):
    import uuid
    from volume_worker import objects
    from volume_worker import rpc
    return rpc.get_serializer().serialize_entity(h.ctx, objects.Snapshot(
        id=str(uuid.uuid4()), volume_id=str(uuid.uuid4()), metadata={}))


def test_a_primitive_without_its_changes_list_keeps_its_fields(harness):
    """``versioned_object.changes`` is optional: the data alone counts."""
    h = harness
    primitive = _volume_primitive(h)
    primitive.pop('versioned_object.changes', None)
    volume_id = primitive['versioned_object.data']['id']
    _cast(h, 'create_volume', volume=primitive)
    got = h.wait_status(volume_id, ['available', 'error'])
    assert got.status == 'available' and got.id == volume_id
    assert got.size == primitive['versioned_object.data']['size']


def _nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_deep_nesting_is_refused_without_recursion(harness):
    from volume_worker import exception
    h = harness
    start = len(h.worker.log_text())
    raw = _raw(h)
    for method, kwargs in (('get_volume', {'volume_id': _nested(500)}),
                           ('list_volumes', {'filters': {'a': _nested(500)}}),
                           ('create_volume', {'volume': _nested(500)})):
        with pytest.raises(exception.InvalidInput) as err:
            raw.call({}, method, **kwargs)
        assert 'nest deeper than' in str(err.value)
        raw.cast({}, method, **kwargs)
    _alive_and_serving(h)
    log = h.worker.log_text()[start:]
    assert 'RecursionError' not in log and 'Traceback' not in log


@pytest.mark.parametrize('name', ['nul\x00byte', 'esc\x1b[31mred',
                                  'two\nlines', 'c1\x85next'])
def test_names_with_control_characters_are_refused(harness, name):
    from volume_worker import exception
    h = harness
    with pytest.raises(exception.InvalidInput) as err:
        _call(h, 'create_volume', volume=h.new_volume(display_name=name))
    assert 'display_name contains control characters' in str(err.value)
    with pytest.raises(exception.InvalidInput) as err:
        _call(h, 'create_volume',
              volume=h.new_volume(display_name='x' * 256))
    assert 'longer than 255' in str(err.value)


# The worker's rate limit of refusal lines (config.RefusalFilter).
BURST, PER_SECOND, MAX_LINE = 20, 1.0, 300 + 200  # message + log prefix


def _hostile_batch(h):
    """One of each kind of hostile message, as casts (no one to answer)."""
    primitive = _volume_primitive(h)
    yield lambda: _cast(h, 'create_volume',
                        volume=_without(primitive, 'id'))
    yield lambda: _raw(h).cast({}, 'create_volume', volume=_nested(500))
    yield lambda: _cast(h, 'delete_volume', volume_id='x' * 5000)
    yield lambda: _cast(h, 'no_such_method_' + 'y' * 5000)
    yield lambda: _cast(h, 'create_volume', volume=dict(
        primitive, **{'versioned_object.version': '9.9'}))
    yield lambda: _cast(h, 'create_volume', volume=h.new_volume(
        display_name='\x00\n' * 100))
    yield lambda: _cast(h, 'list_volumes', filters={'k' * 3000: 1})
    yield lambda: _publish_raw(h, b'\xff\xfe garbage',
                               'application/octet-stream')
    yield lambda: _publish_raw(h, b'not json at all ' * 100)
    yield lambda: _publish_raw(h, json.dumps(
        {'oslo.version': '9.' + 'v' * 5000, 'oslo.message': '{}'}))


def test_a_flood_of_hostile_messages_costs_a_few_short_lines(harness):
    h = harness
    start = len(h.worker.log_text())
    began = time.monotonic()
    sent = 0
    for _ in range(20):
        for send in _hostile_batch(h):
            send()
            sent += 1
    _alive_and_serving(h)
    deadline = time.monotonic() + 20
    while _queue_depth(h) and time.monotonic() < deadline:
        time.sleep(0.1)
    took = time.monotonic() - began
    lines = h.worker.log_text()[start:].splitlines()
    assert sent == 200
    # A burst, then one a second: not one (let alone dozens) per message.
    assert len(lines) <= BURST + took * PER_SECOND + 5, '\n'.join(lines)
    assert not [line for line in lines if len(line) > MAX_LINE]
    assert not [line for line in lines if ' ERROR ' in line]
    text = '\n'.join(lines)
    assert 'Traceback' not in text and 'RecursionError' not in text
    # The next line let through says how many were left out.
    summary = 'more refusals not logged)'
    deadline = time.monotonic() + 15
    while summary not in h.worker.log_text()[start:]:
        assert time.monotonic() < deadline, 'no summary of the left out'
        _cast(h, 'delete_volume', volume_id='not-a-uuid')
        time.sleep(0.5)

"""One short line per refused request, and a flood rate-limited (config.RefusalFilter)."""

import logging
import sys

import pytest

from volume_worker import config
from volume_worker import exception
from volume_worker import rpc


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _record(msg, args=(), name='volume_worker.rpc', exc_info=None):
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args,
                             exc_info)


@pytest.fixture
def refusals():
    clock = Clock()
    return config.RefusalFilter(clock=clock), clock


def test_a_refusal_is_one_bounded_line(refusals):
    f, _ = refusals
    record = _record(rpc.REFUSED, ('create_volume', 'bad\nreason ' * 100))
    assert f.filter(record)
    text = record.getMessage()
    assert '\n' not in text and len(text) == f.MAX_CHARS
    assert text.startswith('create_volume refused: bad reason')
    assert record.levelname == 'WARNING' and record.exc_info is None


def test_other_records_pass_unchanged(refusals):
    f, _ = refusals
    record = _record('Backend %s is ready', ('b',))
    for _ in range(2 * f.BURST):
        assert f.filter(record)
    assert record.getMessage() == 'Backend b is ready'
    assert record.levelno == logging.WARNING


def test_a_flood_is_rate_limited_and_summarised(refusals):
    f, clock = refusals
    passed = sum(f.filter(_record('%s rejected: %s', ('m', 'r')))
                 for _ in range(f.BURST + 30))
    assert passed == f.BURST
    clock.now += 1 / f.PER_SECOND
    record = _record('%s rejected: %s', ('m', 'r'))
    assert f.filter(record)
    assert record.getMessage().endswith('(30 more refusals not logged)')
    assert not f.filter(_record('%s rejected: %s', ('m', 'r')))


def test_dispatcher_errors_and_dropped_messages_become_one_line(refusals):
    from oslo_messaging.rpc import dispatcher
    f, _ = refusals
    try:
        raise dispatcher.NoSuchMethod('x' * 1000)
    except dispatcher.NoSuchMethod:
        record = _record('Exception during message handling',
                         name='oslo_messaging.rpc.server',
                         exc_info=sys.exc_info())
    assert f.filter(record)
    assert record.getMessage().startswith('Request refused: Endpoint does')
    assert len(record.getMessage()) <= f.MAX_CHARS and not record.exc_info
    try:
        raise ValueError('version ' + 'v' * 5000)
    except ValueError:
        record = _record(f.DROPPED, exc_info=sys.exc_info())
    assert f.filter(record)
    assert record.getMessage().startswith(
        'Message dropped, not an oslo.messaging request: ValueError')
    # Below WARNING for oslo.log, which would append the active exception.
    assert record.levelno < logging.WARNING
    assert not f.filter(_record(f.REDUNDANT[0], ({'objtype': 'Nonsense'},),
                                name='object'))


def test_depth_is_checked_without_recursion():
    deep = []
    for _ in range(100000):
        deep = [deep]
    with pytest.raises(rpc.RefusedArgument) as err:
        rpc.check_depth({'a': deep})
    assert isinstance(err.value.error, exception.InvalidInput)
    rpc.check_depth({'a': [[{'b': [1]}]]})


class _Incoming:
    def __init__(self, message):
        self.message = message
        self.ctxt = {}
        self.client_timeout = None


@pytest.mark.parametrize('message,reason', [
    ('not a dict', 'no JSON object'),
    ({'method': 5}, 'method must be a name'),
    ({'method': 'm' * 129}, 'method must be a name'),
    ({'method': 'get_volume', 'args': [1]}, 'args must be a JSON object'),
    ({'method': 'get_volume', 'version': '1.x'}, 'version must be'),
    ({'method': 'get_volume', 'version': 1.0}, 'version must be'),
    ({'method': 'get_volume', 'namespace': {}}, 'namespace must be'),
])
def test_malformed_envelopes_are_refused(message, reason, caplog):
    import oslo_messaging as messaging

    class Endpoint:
        target = messaging.Target(version='1.3')

    d = rpc.RefusingDispatcher([Endpoint()], rpc.RequestSerializer())
    with pytest.raises(messaging.ExpectedException) as err:
        d.dispatch(_Incoming(message))
    error = err.value.exc_info[1]
    assert isinstance(error, exception.InvalidInput)
    assert reason in str(error)
    assert 'refused: Invalid input received: ' in caplog.text
    assert reason in caplog.text

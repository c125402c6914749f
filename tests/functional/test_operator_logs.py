"""Logs as JSON (``use_json``): every line of an operation carries its
request id and its resource id, whichever thread logged it (the operation's
green thread, the native thread of its driver call)."""

import json

import pytest

from tests.functional.conftest import fake_backend
from tests.functional.conftest import start_harness


@pytest.fixture(params=['eventlet', 'threading'])
def harness(request, tmp_path):
    state_dir = str(tmp_path / 'state')
    h = start_harness(
        tmp_path, executor=request.param,
        extra_default={'use_json': 'true', 'debug': 'true'},
        backends={
            # The delay logs a line from the driver call's thread.
            'fake1': fake_backend('fake1', state_dir,
                                  fake_fault_delay='create_volume:0.05'),
            'fake2': fake_backend('fake2', state_dir,
                                  fake_fault_raise='create_volume')})
    yield h
    h.close()
    h.worker.stop()


def records(worker):
    lines = worker.log_text().splitlines()
    out = [json.loads(line) for line in lines if line.strip()]
    assert len(out) == len([l for l in lines if l.strip()])  # all JSON
    return out


def lines_of(recs, resource_id):
    """Lines that mention the resource or say they belong to it.

    Not the refusals of the test's own polling (``get_volume`` before the
    create is consumed): those are requests of their own.
    """
    return [r for r in recs
            if ((r.get('context') or {}).get('resource_uuid') == resource_id
                or resource_id in r['message'])
            and not r['message'].startswith('get_volume rejected')]


def test_every_line_of_an_operation_carries_request_and_resource(harness):
    h = harness
    good = h.new_volume(backend=h.backend(0))
    bad = h.new_volume(backend=h.backend(1))
    h.api.create_volume(h.ctx, h.backend(0), good)
    h.api.create_volume(h.ctx, h.backend(1), bad)
    h.wait_status(good.id, ['available'], backend=h.backend(0))
    h.wait_status(bad.id, ['error'], backend=h.backend(1))
    h.worker.wait_for_log('every step reverted')
    recs = records(h.worker)
    for volume, expected in ((good, ['create_volume started',
                                     'Fake fault: delaying create_volume',
                                     'create_volume succeeded']),
                             (bad, ['create_volume started',
                                    'create_volume failed, every step '
                                    'reverted'])):
        mine = lines_of(recs, volume.id)
        for fragment in expected:
            assert any(fragment in r['message'] for r in mine), (
                fragment, [r['message'] for r in mine])
        for rec in mine:
            context = rec.get('context') or {}
            assert context.get('request_id') == h.ctx.request_id, rec
            assert context.get('resource_uuid') == volume.id, rec
    # Start-up lines carry no operation's ids.
    startup = [r for r in recs if 'volume-worker started' in r['message']]
    assert startup and not (startup[0].get('context') or {}).get(
        'resource_uuid')

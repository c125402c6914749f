"""Flows of one family running at once must not reach into each other."""

import threading

from taskflow.patterns import linear_flow

from volume_worker.flows import common
from volume_worker.flows import runner as flow_runner


class Gate(common.VolumeTask):
    default_provides = 'passed'

    def execute(self, gate):
        if not gate.wait(10):
            raise RuntimeError('gate never opened')
        return True


class After(common.VolumeTask):
    def execute(self, passed):
        return passed


def _family():
    return flow_runner.FlowFamily(
        'gated', 'volume',
        lambda: linear_flow.Flow('gated').add(Gate(), After()),
        load=lambda store, deps: {})


def test_runs_of_one_family_do_not_share_tasks():
    family = _family()
    first, second = family.new_flow(), family.new_flow()
    assert {id(t) for t in first}.isdisjoint({id(t) for t in second})
    assert [t.name for t in first] == ['Gate', 'After']


def test_a_blocked_run_does_not_hold_up_another():
    family = _family()
    runner = flow_runner.FlowRunner('h@b', journal=False)
    blocked = threading.Event()
    results = {}

    def run(name, gate):
        results[name] = runner.run(family, name, {}, {'gate': gate})

    slow = threading.Thread(target=run, args=('slow', blocked))
    slow.start()
    opened = threading.Event()
    opened.set()
    fast = threading.Thread(target=run, args=('fast', opened))
    fast.start()
    fast.join(5)
    finished_while_other_blocked = not fast.is_alive()
    blocked.set()
    slow.join(10)
    assert finished_while_other_blocked
    assert results['fast']['passed'] is True
    assert results['slow']['passed'] is True

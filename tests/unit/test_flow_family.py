"""Flows of one family running at once must not reach into each other."""

import threading

from taskflow.patterns import linear_flow

from volume_worker.flows import common
from volume_worker.flows import runner as flow_runner
from volume_worker import operations


class Gate(common.VolumeTask):
    idempotent = True
    default_provides = 'passed'

    def execute(self, gate):
        if not gate.wait(10):
            raise RuntimeError('gate never opened')
        return True


class After(common.VolumeTask):
    idempotent = True

    def execute(self, passed):
        return passed


def _family():
    return flow_runner.FlowFamily(
        'gated', lambda: linear_flow.Flow('gated').add(Gate(), After()),
        subject=flow_runner.Role('volume'))


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
        op = operations.Operation(family, None, store={'gate': gate})
        results[name] = runner.run(op, {})

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


def test_a_task_must_say_what_a_resumed_run_does_with_it():
    class Undeclared(common.VolumeTask):
        def execute(self):
            pass

    family = flow_runner.FlowFamily(
        'undeclared', lambda: linear_flow.Flow('u').add(Undeclared()),
        subject=flow_runner.Role('volume'))
    try:
        family.new_flow()
    except TypeError as exc:
        assert 'Undeclared' in str(exc) and 'checkpoint' in str(exc)
    else:
        raise AssertionError('a task without a resume declaration was built')

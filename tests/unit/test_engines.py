"""Engines kept for the next run, and the storage they run on.

A kept engine must behave as a fresh one would: the values, results and
failures of its last run gone, reverts as before, and never two runs on
one engine at once. These run without a database (FlowRunner without a
journal); test_runner.py runs the real families with their journal
through the same engines.
"""

import threading

import pytest
from taskflow.patterns import linear_flow
from taskflow import states
from taskflow import storage as tf_storage

from volume_worker.flows import common
from volume_worker.flows import engines
from volume_worker.flows import runner as flow_runner
from volume_worker import operations


class Record(common.VolumeTask):
    idempotent = True
    default_provides = 'recorded'

    def execute(self, log, value, optional=None):
        log.append(('execute', self.name, value, optional))
        return value

    def revert(self, log, value, result=None, **kwargs):
        log.append(('revert', self.name, value, result))


class Check(common.VolumeTask):
    checkpoint = True

    def execute(self, log, recorded, fail=False, gate=None):
        if gate is not None and not gate.wait(10):
            raise RuntimeError('gate never opened')
        if fail:
            raise RuntimeError('failed on request')
        log.append(('check', recorded))
        return recorded


def _family(name='kept'):
    return flow_runner.FlowFamily(
        name, lambda: linear_flow.Flow(name).add(Record(), Check()),
        subject=flow_runner.Role('volume'))


def _run(family, **store):
    op = operations.Operation(family, None, store=store)
    return flow_runner.FlowRunner('h@b', journal=False).run(op, {})


def test_a_kept_engine_runs_again_with_the_new_values_only():
    family = _family()
    first_log, second_log = [], []
    assert _run(family, log=first_log, value=1, optional='x')['recorded'] == 1
    assert family.engines.idle() == 1
    engine = family.engines._idle[next(iter(family.engines._idle))][0]
    # Nothing of the first run is held while the engine waits.
    assert engine.storage.fetch('value') is None
    assert all(engine.storage.get_atom_state(t.name) == states.PENDING
               for t in engine.tasks)

    result = _run(family, log=second_log, value=2, optional='y')
    assert result['recorded'] == 2
    assert second_log == [('execute', 'Record', 2, 'y'), ('check', 2)]
    assert first_log == [('execute', 'Record', 1, 'x'), ('check', 1)]
    assert family.engines.idle() == 1  # the same engine came back


def test_other_inputs_get_another_engine():
    family = _family()
    _run(family, log=[], value=1, optional='x')
    log = []
    _run(family, log=log, value=2)  # no 'optional': its default applies
    assert log == [('execute', 'Record', 2, None), ('check', 2)]
    assert family.engines.idle() == 2


def test_a_failed_run_reverts_and_its_engine_reverts_again_next_time():
    family = _family()
    for value in (1, 2):
        log = []
        with pytest.raises(RuntimeError, match='failed on request'):
            _run(family, log=log, value=value, fail=True)
        assert log == [('execute', 'Record', value, None),
                       ('revert', 'Record', value, value)]
    assert family.engines.idle() == 1
    log = []
    _run(family, log=log, value=3, fail=False)
    assert log == [('execute', 'Record', 3, None), ('check', 3)]


class _Crash(BaseException):
    """The thread or process dying: TaskFlow neither catches nor reverts it."""


def test_a_run_that_did_not_end_keeps_its_engine_out():
    class Dies(common.VolumeTask):
        idempotent = True

        def execute(self, die):
            if die:
                raise _Crash()

    family = flow_runner.FlowFamily(
        'dies', lambda: linear_flow.Flow('dies').add(Dies()),
        subject=flow_runner.Role('volume'))
    with pytest.raises(_Crash):
        _run(family, die=True)
    assert family.engines.idle() == 0
    _run(family, die=False)
    assert family.engines.idle() == 1


def test_runs_at_once_never_share_an_engine():
    family = _family()
    gate = threading.Event()
    results, errors = {}, []

    def run(name):
        try:
            results[name] = _run(family, log=[], value=name, gate=gate)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert not errors
    assert {k: v['recorded'] for k, v in results.items()} == {
        0: 0, 1: 1, 2: 2, 3: 3}
    idle = family.engines._idle[next(iter(family.engines._idle))]
    assert len({id(e) for e in idle}) == len(idle) >= 2
    tasks = [id(t) for e in idle for t in e.tasks]
    assert len(tasks) == len(set(tasks))


def test_the_pool_keeps_a_bounded_number_of_engines():
    pool = engines.EnginePool(
        lambda: linear_flow.Flow('f').add(Record()), keep=2)
    store = {'log': [], 'value': 1}
    taken = [pool.checkout(store) for _ in range(3)]
    for engine in taken:
        engine.run()
        pool.checkin(engine)
    assert pool.idle() == 2


def test_a_listener_of_one_run_is_gone_before_the_next():
    family = _family()
    _run(family, log=[], value=1)
    engine = family.engines._idle[next(iter(family.engines._idle))][0]
    # (the journal's listener is registered only with a journal)
    op = operations.Operation(family, None, store={'log': [], 'value': 2})
    op.journal = _NullJournal()
    flow_runner.FlowRunner('h@b', journal=False).run(op, {})
    assert op.journal.calls  # it listened during the run
    assert not any(list(listeners) for _, listeners in
                   engine.atom_notifier.listeners_iter())


class _NullJournal:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append(name)


def test_run_storage_overrides_what_taskflow_storage_still_has():
    # RunStorage replaces these Storage internals: if a TaskFlow upgrade
    # renames one, this fails rather than the engines silently paying the
    # full cost (or breaking).
    for name in ('_with_connection', '_save_flow_detail', '_save_atom_detail',
                 '_fetch_flowdetail', '_atomdetail_by_name', '_lock'):
        assert (hasattr(tf_storage.Storage, name) or
                name in tf_storage.Storage.__init__.__code__.co_names), name
    engine = engines.load(linear_flow.Flow('f').add(Record()),
                          {'log': [], 'value': 5})
    assert isinstance(engine.storage, engines.RunStorage)
    engine.run()
    assert engine.storage.fetch('recorded') == 5
    assert engine.storage.get_flow_state() == states.SUCCESS


def test_an_engine_that_cannot_be_reset_is_dropped_not_the_result(
        monkeypatch):
    family = _family()
    monkeypatch.setattr(engines.Engine, 'reset',
                        lambda self: _raise(RuntimeError('reset broke')))
    assert _run(family, log=[], value=7)['recorded'] == 7
    assert family.engines.idle() == 0


def _raise(exc):
    raise exc


def test_variants_run_their_own_flows_on_engines_kept_apart():
    def build(extra):
        tasks = [Record()] + ([Check()] if extra else [])
        return linear_flow.Flow('variant').add(*tasks)

    family = flow_runner.FlowFamily(
        'variant', build, subject=flow_runner.Role('volume'),
        variant=lambda op: op.store['extra'])
    plain_log, extra_log = [], []
    _run(family, log=plain_log, value=1, extra=False)
    _run(family, log=extra_log, value=2, extra=True)
    _run(family, log=plain_log, value=3, extra=False)
    assert plain_log == [('execute', 'Record', 1, None),
                         ('execute', 'Record', 3, None)]
    assert extra_log == [('execute', 'Record', 2, None), ('check', 2)]
    assert family.engines_of(False).idle() == 1
    assert family.engines_of(True).idle() == 1
    engine = family.engines_of(False)._idle[
        next(iter(family.engines_of(False)._idle))][0]
    assert [t.name for t in engine.tasks] == ['Record']
    # A resumed run of a request takes its variant's flow.
    op = operations.Operation(family, None, store={'extra': True})
    assert [t.name for t in family.flow_for(op)] == ['Record', 'Check']

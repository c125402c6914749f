"""TaskFlow engines for the worker's flows, without TaskFlow's per-run overheads.

An engine keeps its run's state in its own storage objects; what TaskFlow's
persistence backend adds is durability, which the flow journal provides at
a fraction of the cost. So engines get an ephemeral backend whose writes are
no-ops, and are constructed directly rather than looked up through stevedore
entry points.

Two further costs are TaskFlow's defaults for storage shared by threads and
saved to a real database (measured: about half of an operation's flow CPU):
every storage read and write takes a reader-writer lock (a condition
variable and a thread lookup each time), every write copies the atom's
detail, saves the copy through a new backend connection inside a tenacity
retry, and merges it back. ``RunStorage`` (a ``taskflow.storage.Storage``)
keeps the same semantics for an engine whose backend cannot fail and keeps
nothing: one reentrant lock for readers and writers, details changed in
place, no connection, no retry.

Compiling a flow, preparing its storage and validating its arguments cost
as much again, each run. ``EnginePool`` keeps engines that finished a run,
reset (TaskFlow's supported way to run a flow again) and without their
run's values, and hands them to the next run of the same flow with the
same injected names. An engine serves one run at a time; a run that did
not end normally (the thread killed, the process exiting) does not give its
engine back.
"""

import collections
import threading

from oslo_log import log as logging
from taskflow import atom
from taskflow.engines.action_engine import engine as action_engine
from taskflow import exceptions as tf_exceptions
from taskflow.persistence import base as persistence_base
from taskflow.persistence import models
from taskflow import states
from taskflow import storage as tf_storage
from taskflow.utils import misc
from taskflow.utils import persistence_utils


class _EphemeralConnection(persistence_base.Connection):
    """Accepts every save and keeps nothing: the engine holds the live state."""

    def __init__(self, backend):
        self._backend = backend

    @property
    def backend(self):
        return self._backend

    def close(self):
        pass

    def upgrade(self):
        pass

    def clear_all(self):
        pass

    def validate(self):
        pass

    def update_atom_details(self, atom_detail):
        return atom_detail

    def update_flow_details(self, flow_detail):
        return flow_detail

    def save_logbook(self, book):
        return book

    def destroy_logbook(self, book_uuid):
        pass

    def _nothing(self, *args, **kwargs):
        raise tf_exceptions.NotFound('ephemeral storage keeps nothing')

    get_logbook = get_flow_details = get_atom_details = _nothing

    def get_logbooks(self, lazy=False):
        return iter(())

    def get_flows_for_book(self, book_uuid):
        return iter(())

    def get_atoms_for_flow(self, fd_uuid):
        return iter(())


class EphemeralBackend(persistence_base.Backend):
    def __init__(self):
        super().__init__({})
        self._connection = _EphemeralConnection(self)

    def get_connection(self):
        return self._connection

    def close(self):
        pass


LOG = logging.getLogger(__name__)

_BACKEND = EphemeralBackend()  # stateless: one serves every engine


class _OneLock:
    """Storage's reader-writer lock as one reentrant lock for both.

    Readers of a serial engine's storage never overlap (the engine, its
    tasks and its listeners run in one thread), so mutual exclusion loses
    nothing and costs a fraction of a reader-writer lock.
    """

    __slots__ = ('_lock',)

    def __init__(self):
        self._lock = threading.RLock()

    def read_lock(self):
        return self._lock

    def write_lock(self):
        return self._lock


class RunStorage(tf_storage.Storage):
    """TaskFlow storage for a backend that keeps nothing and cannot fail.

    ``Storage`` copies a detail before changing it and saves the copy
    through a connection, retried on ``StorageFailure``, so that a failed
    save leaves the live detail as it was. With the ephemeral backend no
    save fails and none keeps anything: details are changed in place and
    the save is the identity.
    """

    def __init__(self, flow_detail, backend=None, scope_fetcher=None):
        super().__init__(flow_detail, backend=backend,
                         scope_fetcher=scope_fetcher)
        self._lock = _OneLock()

    def _with_connection(self, functor, *args, **kwargs):
        return functor(None, *args, **kwargs)

    def _save_flow_detail(self, conn, original_flow_detail, flow_detail):
        if flow_detail is not original_flow_detail:
            original_flow_detail.update(flow_detail)
        return original_flow_detail

    def _save_atom_detail(self, conn, original_atom_detail, atom_detail):
        if atom_detail is not original_atom_detail:
            original_atom_detail.update(atom_detail)
        return original_atom_detail

    def _fetch_flowdetail(self, clone=False):
        return (self._flowdetail, self._flowdetail)

    def _atomdetail_by_name(self, atom_name, expected_type=None, clone=False):
        return super()._atomdetail_by_name(atom_name,
                                           expected_type=expected_type)


class _OnRunStorage:
    """An action engine on ``RunStorage`` that validates its arguments once.

    An engine's atoms and injected names do not change between the runs
    of a pooled engine, so neither does the outcome of validation.
    """

    def __init__(self, flow, flow_detail, backend, options):
        super().__init__(flow, flow_detail, backend, options)
        self.tasks = None
        self.names = None

    @misc.cachedproperty
    def storage(self):
        def _scope_fetcher(atom_name):
            if self._compiled:
                return self._runtime.fetch_scopes_for(atom_name)
            return None
        return RunStorage(self._flow_detail, backend=self._backend,
                          scope_fetcher=_scope_fetcher)

    def validate(self):
        if self._validated:
            return
        super().validate()


class Engine(_OnRunStorage, action_engine.SerialActionEngine):
    """A serial engine on ``RunStorage``."""


class ParallelEngine(_OnRunStorage, action_engine.ParallelActionEngine):
    """Runs the tasks of a flow's unordered parts at once, in its executor.

    The engine's own thread still changes every atom's state (and so runs
    the journal listener); only the tasks' ``execute``/``revert`` run in
    the executor's threads. ``RunStorage``'s one lock serves them as it
    serves a serial engine (readers merely wait for each other).
    """


_OPTIONS = {'gather_statistics': False}


def load(flow, store, executor=None):
    """An engine for one run of ``flow`` with ``store`` injected.

    With ``executor`` (``concurrency.task_pool``) tasks that do not depend
    on each other run in it at once; otherwise one after another.
    """
    book = models.LogBook(flow.name)
    flow_detail = persistence_utils.create_flow_detail(flow, book=book)
    if executor is None:
        engine = Engine(flow, flow_detail, _BACKEND, _OPTIONS)
    else:
        engine = ParallelEngine(flow, flow_detail, _BACKEND,
                                dict(_OPTIONS, executor=executor))
    engine.storage.inject(store)
    return engine


class EnginePool:
    """Engines of one flow, compiled and prepared, ready for another run.

    ``build()`` returns a new flow whose atoms no other engine holds.
    Engines are kept per set of injected names (the flow's inputs), at
    most ``keep`` idle ones each (about 35 KiB each): as many as operations
    of one family run at once, by default the RPC executor's 64 threads.
    """

    def __init__(self, build, keep=64):
        self._build = build
        self._keep = keep
        self._idle = collections.defaultdict(collections.deque)

    def checkout(self, store):
        """An engine ready to run with ``store`` injected."""
        names = frozenset(store)
        try:
            engine = self._idle[names].pop()
        except IndexError:
            flow = self._build()
            engine = load(flow, store)
            engine.names = names
            engine.tasks = list(iter_atoms(flow))
            return engine
        engine.storage.inject(store)
        return engine

    def checkin(self, engine):
        """Take back an engine whose run ended (succeeded or reverted)."""
        if engine.storage.get_flow_state() not in (states.SUCCESS,
                                                   states.REVERTED):
            return  # stopped half way: not reusable
        storage = engine.storage
        try:
            # Drop the run's values: injected arguments, results, failures.
            storage.inject(dict.fromkeys(engine.names))
            for task in engine.tasks:
                storage.reset(task.name)
            engine.reset()
        except Exception:
            # The operation is over either way; the engine is not kept.
            LOG.exception('Could not reset an engine of %s; dropped',
                          storage.flow_name)
            return
        idle = self._idle[engine.names]
        if len(idle) < self._keep:
            idle.append(engine)

    def idle(self):
        return sum(len(d) for d in self._idle.values())


def iter_atoms(flow):
    """The atoms of a flow and of its subflows, in the order they were added."""
    for item in flow:
        if isinstance(item, atom.Atom):
            yield item
        else:
            yield from iter_atoms(item)

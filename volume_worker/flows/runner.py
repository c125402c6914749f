"""Runs an operation's flow with its journal, and resumes or reverts unfinished ones.

The journal is one row per operation in the worker's own database, not
TaskFlow's persistence backend (130-200 ms a flow here). Its insert rides in
the transaction of the operation's first status change and its delete in
that of the last (writes the operation makes anyway), so a flow pays no
commit of its own for it; only a task declared ``checkpoint`` (an effect on
the backend too costly to redo) adds an update. After a crash, start-up
finds the rows left behind and, by the family's rule, resumes the flow or
reverts what it had done. Resumption goes by task, not by position: a
checkpointed task is skipped with its recorded result, every other task
runs again (each must declare itself ``idempotent``), so flows with
unordered or graph parts resume the same way as linear ones.
"""

import contextlib

from oslo_log import log as logging
from taskflow import exceptions as tf_exceptions
from taskflow.patterns import linear_flow
from taskflow import states as tf_states
from taskflow import task as tf_task

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import engines
from volume_worker import metrics

LOG = logging.getLogger(__name__)

RUNNING = 'running'
REVERTING = 'reverting'

RESUME = 'resume'
REVERT = 'revert'


class Role:
    """A resource an operation touches, under the name its tasks use.

    ``new``: the request brings it and it may not be in the database yet (a
    create). ``id_from='snapshot.volume_id'``: its id is that field of
    another role's resource (a field that never changes, so it may be read
    before the locks are taken). ``many``: the request names a list of
    them (a group's member volumes); each is locked, loaded and checked,
    and tasks get the list.
    """

    def __init__(self, resource_type, name=None, new=False, id_from=None,
                 many=False):
        if many and (new or id_from):
            raise ValueError('a role of many resources is named by the '
                             'request, as existing resources')
        self.type = resource_type
        self.name = name or resource_type
        self.new = new
        self.many = many
        self.id_from = tuple(id_from.split('.', 1)) if id_from else None


class FlowFamily:
    """What the mechanism needs to know about one operation family.

    ``operation`` is the RPC method; ``subject`` the resource whose status
    the operation drives (by its transition table entry); ``held`` the
    resources it keeps still (locked, status checked, unchanged);
    ``event`` the notification prefix; ``build()`` returns the flow;
    ``check(op)`` refuses a request once its resources are locked and
    loaded; ``on_resume`` says whether an interrupted run resumes or
    reverts; ``while_frozen`` lets it run on a frozen backend (the
    consumer's path, and what ends or drives a freeze); ``resume_late``:
    an interrupted run needs other backends' workers (a migration) and is
    resumed once every backend of the process serves RPC, not before.

    ``variant(op)``: which of a few flows a run takes, as a small hashable
    value handed to ``build(value)`` (a create of an encrypted type has a
    key task, a plain one has not: an atom that would do nothing still costs
    the engine its scheduling). Each variant's engines are kept apart; a
    resumed run takes the variant of its request, which the resources
    decide and do not change while the operation holds them.

    ``shaped``: ``build(op)`` shapes the flow of one run after its request
    (a task per member of a group, named by the member, so a resumed run
    finds each one's checkpoint); such flows are built for every run and
    their engines not kept. ``workers(op)``: how many of a run's tasks
    that do not depend on each other may run at once (more than 1: a
    parallel engine with a pool of that many threads, green under
    eventlet); unset, tasks run one after another.
    """

    def __init__(self, operation, build, subject, held=(), event=None,
                 check=None, on_resume=RESUME, while_frozen=False,
                 resume_late=False, shaped=False, workers=None,
                 variant=None):
        self.operation = operation
        self.build = build
        self.subject = subject
        self.held = tuple(held)
        self.roles = (subject,) + self.held
        self.event = event
        self.check = check
        self.on_resume = on_resume
        self.while_frozen = while_frozen
        self.resume_late = resume_late
        self.shaped = shaped
        self.workers = workers
        self.variant = variant
        self._templates = {}
        self._pools = {}

    @property
    def engines(self):
        """Engines of this family's (default variant's) flow kept for the
        next runs."""
        return self.engines_of(None)

    def engines_of(self, variant):
        pool = self._pools.get(variant)
        if pool is None:
            pool = self._pools.setdefault(variant, engines.EnginePool(
                lambda: self.new_flow(variant)))
        return pool

    def variant_of(self, op):
        return self.variant(op) if self.variant is not None else None

    def _build(self, variant):
        return self.build(variant) if self.variant is not None else \
            self.build()

    def new_flow(self, variant=None):
        """A flow for one run.

        Engines running at the same time must not share task objects: a
        task's progress notifier would carry one engine's listeners into
        another's storage locks. Copies of a template are cheap (building a
        task inspects its signatures); the flow is rebuilt from them.
        """
        if self.shaped:
            raise TypeError('%s shapes its flow for each run: flow_for(op)'
                            % self.operation)
        template = self._templates.get(variant)
        if template is None:
            flow = self._build(variant)
            tasks = _declared_tasks(self.operation, flow)
            if not (type(flow) is linear_flow.Flow and
                    all(isinstance(t, tf_task.Task) for t in flow)):
                return flow  # not a plain list of tasks: build every time
            template = self._templates[variant] = (flow.name, tasks)
        name, tasks = template
        return linear_flow.Flow(name).add(
            *(t.copy(retain_listeners=False) for t in tasks))

    def flow_for(self, op):
        """The flow of one run of ``op`` (a shaped family's, or a new one)."""
        if not self.shaped:
            return self._build(self.variant_of(op))
        flow = self.build(op)
        _declared_tasks(self.operation, flow)
        return flow

    def workers_for(self, op):
        """Threads for the run's independent tasks; None: one at a time."""
        count = self.workers(op) if self.workers is not None else None
        return count if count and count > 1 else None


def _declared_tasks(operation, flow):
    """The tasks of ``flow``, each declaring what a resumed run does with it."""
    tasks = list(iter_tasks(flow))
    undeclared = [t.name for t in tasks
                  if not (getattr(t, 'checkpoint', False) or
                          getattr(t, 'idempotent', False))]
    if undeclared:
        raise TypeError('%s: tasks %s declare neither checkpoint nor '
                        'idempotent; a resumed run would not know '
                        'whether to skip them'
                        % (operation, ', '.join(undeclared)))
    return tasks


class _JournalListener:
    """Keeps a running operation's journal row in step with its progress.

    The finish rides along with the last task's own write; a checkpointed
    task's result and the switch to reverting are written at once, except
    a None result of a task declaring ``checkpoint_none = False`` (it had
    nothing to do, and does nothing again when a resumed run repeats it).
    """

    def __init__(self, journal, tasks, progress, engine):
        self.journal = journal
        self.checkpointed = {t.name for t in tasks
                             if getattr(t, 'checkpoint', False)}
        self.none_unrecorded = {t.name for t in tasks
                                if not getattr(t, 'checkpoint_none', True)}
        self.last_task = tasks[-1].name if tasks else None
        self.progress = progress
        self.engine = engine
        self.reverting = False
        self.fenced = False

    def __call__(self, state, details):
        if self.fenced:
            return
        name = details.get('task_name')
        try:
            if state == 'RUNNING' and name == self.last_task:
                self.journal.defer_finish()
            elif state == 'SUCCESS' and name in self.checkpointed:
                if (details.get('result') is None and
                        name in self.none_unrecorded):
                    return
                self.progress[name] = details.get('result')
                self.journal.checkpoint(self.progress)
            elif state == 'FAILURE' and _fenced(details.get('result')):
                self._stop()
            elif state in ('FAILURE', 'REVERTING') and not self.reverting:
                self.reverting = True
                # The finish must not be written now; an unwritten start
                # means nothing was done and there is no row to update.
                unwritten = not self._started()
                self.journal.discard_pending()
                if not unwritten:
                    self.journal.checkpoint(self.progress, state=REVERTING)
        except exception.OperationFenced:
            self._stop()

    def _started(self):
        return not any(statement is db.OperationJournal._INSERT
                       for statement, _params in self.journal.pending)

    def _stop(self):
        """A peer owns the operation now: no further step, and no revert
        (the peer resumes or reverts it by the family's rule)."""
        self.fenced = True
        self.journal.discard_pending()
        LOG.error('Operation %s was taken over by another worker (this '
                  'one\'s lease expired): stopped here, nothing reverted',
                  self.journal.id)
        self.engine.suspend()


def _fenced(result):
    check = getattr(result, 'check', None)
    return bool(check and check(exception.OperationFenced))


class _AbortResumedFlow(tf_task.Task):
    """Last task of a flow resumed to be reverted: fails so all is undone."""

    def execute(self):
        raise tf_exceptions.TaskFlowException(
            'reverting an operation interrupted by a worker restart')


class FlowRunner:
    """Runs the operations of backend ``host`` with their journal rows.

    ``owner`` (default ``host``) is the worker whose rows they are: in a
    cluster, the member (host@backend) of the backend ``cluster@backend``;
    its lease lasts ``lease_timeout`` seconds unless renewed.
    """

    def __init__(self, host, journal=True, owner=None, lease_timeout=None):
        self.host = host
        self.journal = journal
        self.owner = owner or host
        self.lease_timeout = lease_timeout

    def run(self, op, deps):
        """Run a new operation to its end; raises the original error on failure."""
        if self.journal:
            op.journal = db.OperationJournal.start(
                op.id, self.host, op.family.operation, op.resource_list(),
                op.store, owner=self.owner,
                lease_timeout=self.lease_timeout)
        family = op.family
        workers = family.workers_for(op)
        if family.shaped or workers:
            flow = family.flow_for(op)
            with _engine(flow, _store(op, deps), workers) as engine:
                return self._run_engine(engine, list(iter_tasks(flow)), op,
                                        progress={})
        pool = family.engines_of(family.variant_of(op))
        engine = pool.checkout(_store(op, deps))
        tasks = [t for t in engine.tasks if isinstance(t, tf_task.Task)]
        try:
            result = self._run_engine(engine, tasks, op, progress={})
        except exception.OperationFenced:
            raise  # suspended half-way: not reusable
        except Exception:
            pool.checkin(engine)  # failed and reverted: reusable
            raise
        # (Anything else, the thread killed say, keeps the engine out.)
        pool.checkin(engine)
        return result

    def resume(self, op, row, deps):
        """Finish (or revert) an operation a previous process left unfinished."""
        op.journal = db.OperationJournal.of_row(row)
        flow = op.family.flow_for(op)
        progress = dict(row['progress'] or {})
        revert = op.family.on_resume == REVERT or row['state'] == REVERTING
        if revert:
            flow = linear_flow.Flow(flow.name + '-revert').add(
                flow, _AbortResumedFlow(name='AbortResumedFlow'))
        LOG.info('%s %s of %s %s after restart (checkpoints: %s)',
                 'Reverting' if revert else 'Resuming', op.family.operation,
                 op.family.subject.type, op.subject.id,
                 ', '.join(progress) or 'none')
        tasks = list(iter_tasks(flow))
        with _engine(flow, _store(op, deps),
                     op.family.workers_for(op)) as engine:
            engine.compile()
            engine.prepare()
            _mark_done(engine, tasks, progress, revert)
            return self._run_engine(engine, tasks, op, progress)

    def _run_engine(self, engine, tasks, op, progress):
        listener = None
        if op.journal is not None:
            listener = _JournalListener(op.journal, tasks, progress, engine)
            engine.atom_notifier.register('*', listener)
        counted = metrics.operation_started(self.host, op)
        LOG.debug('%s started', op.family.operation)
        outcome = None
        try:
            try:
                engine.run()
            except Exception as exc:
                # Failed and reverted: the operation has ended. Anything
                # else (the thread killed, the process exiting) leaves the
                # row for the next start, as a crash would.
                outcome = (metrics.REVERTED if engine.storage.get_flow_state()
                           == tf_states.REVERTED else metrics.FAILED)
                if op.journal is not None:
                    op.journal.finish()
                if outcome == metrics.REVERTED:
                    LOG.warning('%s failed, every step reverted: %s',
                                op.family.operation, exc)
                else:
                    LOG.error('%s failed and its revert did not finish: %s',
                              op.family.operation, exc)
                raise
            if listener is not None and listener.fenced:
                raise exception.OperationFenced(operation_id=op.id)
            if op.journal is not None:
                op.journal.flush()  # the finish, if the last task wrote nothing
            outcome = metrics.SUCCEEDED
            LOG.debug('%s succeeded', op.family.operation)
            return engine.storage.fetch_all()
        finally:
            metrics.operation_finished(op, counted, outcome)
            if listener is not None:
                engine.atom_notifier.deregister('*', listener)


@contextlib.contextmanager
def _engine(flow, store, workers):
    """An engine for one run, with a pool of ``workers`` threads if more than one."""
    if not workers:
        yield engines.load(flow, store)
        return
    with concurrency.task_pool(workers) as executor:
        yield engines.load(flow, store, executor=executor)


def _store(op, deps):
    """What a run's tasks may ask for: the request, the deps, the resources."""
    store = dict(op.store, **deps)
    store.update(op.resources)
    store['op'] = op
    return store


def iter_tasks(flow):
    for item in flow:
        if isinstance(item, tf_task.Task):
            yield item
        else:
            yield from iter_tasks(item)


def _mark_done(engine, tasks, progress, revert):
    """Mark what a previous run finished, so the engine does not redo it.

    Each task by its own declaration: a checkpointed task that finished
    takes its recorded result; any other runs again (it is idempotent). To
    revert, every task is marked done so the final failure undoes them all
    (reverts tolerate a task that never ran).
    """
    for task in tasks:
        if isinstance(task, _AbortResumedFlow):
            continue
        if task.name in progress:
            engine.storage.save(task.name, progress[task.name])
        elif revert:
            engine.storage.save(task.name, None)

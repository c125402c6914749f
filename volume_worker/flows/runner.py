"""Runs flows with a crash journal, and resumes or reverts unfinished ones.

The journal is one row per operation in the worker's own database, not
TaskFlow's persistence backend (130-200 ms a flow here). Its insert rides in
the transaction of the operation's first write and its delete in that of the
last (the status changes the operation makes anyway), so a flow pays no
commit of its own for it; only a task marked ``checkpoint = True`` (an
effect on the backend too costly to redo) adds an update. After a crash,
start-up finds the rows left behind and, by the flow family's rule, resumes
the flow (re-running its idempotent steps after the last checkpoint) or
reverts what it had done.
"""

from oslo_log import log as logging
from taskflow import exceptions as tf_exceptions
from taskflow.patterns import linear_flow
from taskflow import task as tf_task

from volume_worker.db import api as db
from volume_worker.flows import engines

LOG = logging.getLogger(__name__)

RUNNING = 'running'
REVERTING = 'reverting'

RESUME = 'resume'
REVERT = 'revert'


class FlowFamily:
    """What the runner needs to know about one operation family.

    ``build()`` returns the flow (built once, then shared by every run);
    ``load(store, deps)`` rebuilds the live objects (volume, snapshot) from
    the journaled, JSON-only store; ``on_resume`` says whether an
    interrupted run resumes or reverts.
    """

    def __init__(self, operation, resource_type, build, load, on_resume=RESUME):
        self.operation = operation
        self.resource_type = resource_type
        self.build = build
        self.load = load
        self.on_resume = on_resume
        self._template = None

    def new_flow(self):
        """A flow for one run.

        Engines running at the same time must not share task objects: a
        task's progress notifier would carry one engine's listeners into
        another's storage locks. Copies of a template are cheap (building a
        task inspects its signatures); the flow is rebuilt from them.
        """
        if self._template is None:
            flow = self.build()
            tasks = list(flow)
            if not (type(flow) is linear_flow.Flow and
                    all(isinstance(t, tf_task.Task) for t in tasks)):
                return flow  # not a plain list of tasks: build every time
            self._template = (flow.name, tasks)
        name, tasks = self._template
        return linear_flow.Flow(name).add(
            *(t.copy(retain_listeners=False) for t in tasks))


class _JournalListener:
    """Keeps a running flow's journal row in step with its progress.

    The finish rides along with the last task's own write; a checkpointed
    task's result and the switch to reverting are written at once.
    """

    def __init__(self, key, tasks, progress):
        self.key = key
        self.checkpointed = {t.name for t in tasks
                             if getattr(t, 'checkpoint', False)}
        self.last_task = tasks[-1].name if tasks else None
        self.progress = progress
        self.reverting = False

    def __call__(self, state, details):
        name = details.get('task_name')
        if state == 'RUNNING' and name == self.last_task:
            db.journal_defer_finish(*self.key)
        elif state == 'SUCCESS' and name in self.checkpointed:
            self.progress[name] = details.get('result')
            db.journal_checkpoint(*self.key, progress=self.progress)
        elif state in ('FAILURE', 'REVERTING') and not self.reverting:
            self.reverting = True
            db.discard_deferred()  # not the finish: the row must stay
            db.journal_checkpoint(*self.key, progress=self.progress,
                                  state=REVERTING)


class _AbortResumedFlow(tf_task.Task):
    """Last task of a flow resumed to be reverted: fails so all is undone."""

    def execute(self):
        raise tf_exceptions.TaskFlowException(
            'reverting an operation interrupted by a worker restart')


class FlowRunner:
    def __init__(self, host, journal=True):
        self.host = host
        self.journal = journal

    def run(self, family, resource_id, store, deps):
        """Run a new operation to its end; raises the original error on failure."""
        key = None
        if self.journal:
            key = (family.resource_type, resource_id)
            db.journal_defer_start(family.resource_type, resource_id,
                                   self.host, family.operation, store)
        flow = family.new_flow()
        return self._run_engine(flow, list(_iter_tasks(flow)), store, deps,
                                key, progress={})

    def resume(self, family, row, deps):
        """Finish (or revert) an operation a previous process left unfinished."""
        store = row['store']
        deps = dict(deps, **family.load(store, deps))
        flow = family.build()
        progress = dict(row['progress'] or {})
        revert = family.on_resume == REVERT or row['state'] == REVERTING
        if revert:
            flow = linear_flow.Flow(flow.name + '-revert').add(
                flow, _AbortResumedFlow(name='AbortResumedFlow'))
        LOG.info('%s %s of %s %s after restart (checkpoints: %s)',
                 'Reverting' if revert else 'Resuming', family.operation,
                 family.resource_type, row['resource_id'],
                 ', '.join(progress) or 'none')
        return self._run_engine(flow, list(_iter_tasks(flow)), store, deps,
                                (row['resource_type'], row['resource_id']),
                                progress, mark_done=True, all_done=revert)

    def _run_engine(self, flow, tasks, store, deps, key, progress,
                    mark_done=False, all_done=False):
        engine = engines.load(flow, dict(store, **deps))
        if key is not None:
            engine.atom_notifier.register(
                '*', _JournalListener(key, tasks, progress))
        if mark_done:
            engine.compile()
            engine.prepare()
            _mark_done(engine, tasks, progress, all_done)
        try:
            engine.run()
        except Exception:
            # Failed and reverted: the operation has ended. Anything else
            # (the thread killed, the process exiting) leaves the row for
            # the next start, as a crash would.
            if key is not None:
                db.journal_finish(*key)
            raise
        if key is not None:
            db.flush_deferred()  # the finish, if the last task wrote nothing
        return engine.storage.fetch_all()


def _iter_tasks(flow):
    for item in flow:
        if isinstance(item, tf_task.Task):
            yield item
        else:
            yield from _iter_tasks(item)


def _mark_done(engine, tasks, progress, all_done):
    """Mark what a previous run finished, so the engine does not redo it.

    Checkpointed tasks take their recorded results. Tasks before the last
    checkpoint that provide nothing (notifications, checks) are skipped too;
    those that provide values run again (they are idempotent). To revert,
    every task is marked done so the final failure undoes them all.
    """
    last = max((i for i, t in enumerate(tasks) if t.name in progress),
               default=-1)
    for index, task in enumerate(tasks):
        if isinstance(task, _AbortResumedFlow):
            continue
        if task.name in progress:
            engine.storage.save(task.name, progress[task.name])
        elif all_done or (index < last and not task.provides):
            engine.storage.save(task.name, None)

"""Runs flows with a crash journal, and resumes or reverts unfinished ones.

The journal is one row per operation in the worker's own database, not
TaskFlow's persistence backend (130-200 ms a flow here). A flow costs:
one insert when it starts, one update after each task whose effect lives on
the backend (``checkpoint = True``), and one delete when it ends. After a
crash, start-up finds the rows left behind and, by the flow family's rule,
resumes the flow from its last checkpoint or reverts what it had done.
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
        self._flow = None
        self._tasks = None

    @property
    def flow(self):
        if self._flow is None:
            self._flow = self.build()
            self._tasks = list(_iter_tasks(self._flow))
        return self._flow

    @property
    def tasks(self):
        return self.flow and self._tasks


class _JournalListener:
    """Writes checkpoints of a running flow into its journal row."""

    def __init__(self, journal_id, checkpointed, progress):
        self.journal_id = journal_id
        self.checkpointed = checkpointed
        self.progress = progress
        self.reverting = False

    def __call__(self, state, details):
        name = details.get('task_name')
        if state == 'SUCCESS' and name in self.checkpointed:
            self.progress[name] = details.get('result')
            db.journal_checkpoint(self.journal_id, self.progress)
        elif state in ('FAILURE', 'REVERTING') and not self.reverting:
            self.reverting = True
            db.journal_checkpoint(self.journal_id, self.progress, REVERTING)


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
        journal_id = None
        if self.journal:
            journal_id = db.journal_start(family.resource_type, resource_id,
                                          self.host, family.operation, store)
        return self._run_engine(family.flow, family.tasks, store, deps,
                                journal_id, progress={})

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
                                row['id'], progress, mark_done=True,
                                all_done=revert)

    def _run_engine(self, flow, tasks, store, deps, journal_id, progress,
                    mark_done=False, all_done=False):
        engine = engines.load(flow, dict(store, **deps))
        if journal_id is not None:
            checkpointed = {t.name for t in tasks
                            if getattr(t, 'checkpoint', False)}
            listener = _JournalListener(journal_id, checkpointed, progress)
            engine.atom_notifier.register('*', listener)
        if mark_done:
            engine.compile()
            engine.prepare()
            _mark_done(engine, tasks, progress, all_done)
        try:
            engine.run()
        except Exception:
            # Ended: done, or failed and reverted. Anything else (the
            # thread killed, the process exiting) leaves the row for the
            # next start, as a crash would.
            if journal_id is not None:
                db.journal_finish(journal_id)
            raise
        if journal_id is not None:
            db.journal_finish(journal_id)
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

"""``workers = N``: a parent process and N worker children on one host.

The parent forks the children, restarts a child that dies (killed,
crashed), forwards SIGTERM and SIGINT to them and waits for their drain.
Each child ``K`` runs the ordinary worker as member ``HOST-K`` of the
cluster named by ``cluster`` (else by ``HOST``): it consumes
``CLUSTER@backend`` and its own ``HOST-K@backend``, and journals its
operations under its own lease, so a dead child's operations are taken
over by its siblings (or by itself once restarted).

Why not oslo.service's ``ProcessLauncher``: it runs a ``ServiceBase`` in
each child with its own signal handling, replacing the worker's drain,
its systemd notifications and its exit path; a child here runs exactly
what a single worker runs.
"""

import os
import signal
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

RESTART_DELAY = 1.0  # seconds between a child's death and its restart


def member_host(host, index):
    return '%s-%d' % (host, index)


def run(conf, count, serve):
    """Run ``serve(index)`` in ``count`` children until SIGTERM; returns
    the exit code. ``serve`` returns its child's exit code; a child that
    ends by itself with a non-zero code (it could not start: a refusal
    of its configuration) ends the whole worker with that code."""
    children = {}
    stopping = []

    def spawn(index):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = serve(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                LOG.exception('Worker %d failed', index)
            finally:
                os._exit(code or 0)
        children[pid] = index
        LOG.info('Worker %d started (pid %d)', index, pid)

    def forward(signum, _frame):
        stopping.append(signum)
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(count):
        spawn(index)
    code = 0
    while children:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, None)
        if index is None or stopping:
            continue
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0:
            code = os.WEXITSTATUS(status)
            LOG.error('Worker %d (pid %d) could not run (exit code %d): '
                      'stopping the others', index, pid, code)
            forward(signal.SIGTERM, None)
            continue
        LOG.warning('Worker %d (pid %d) died (%s); starting it again',
                    index, pid, _how(status))
        time.sleep(RESTART_DELAY)
        if not stopping:
            spawn(index)
    LOG.info('All %d workers stopped', count)
    return code


def _how(status):
    if os.WIFSIGNALED(status):
        return 'signal %d' % os.WTERMSIG(status)
    return 'exit code %d' % os.WEXITSTATUS(status)

"""Skips CI accepts: with CI=true any other skip fails the run.

A skip hides a test that did not run, so CI (root, Debian, after
tools/run-tests has installed and started what the suite uses) must not skip
one silently. Loaded by tools/run-tests (``-p tests.skip_allowlist``); every
skip's reason is printed at the end of any run (``-rs`` in pytest.ini).
"""

import os
import re

# (pattern searched in the skip reason, why CI may skip it)
ALLOWED = [
    (r'^PostgreSQL is not reachable',
     'optional service: its tests skip, with the reason, when it is absent'),
    (r'^Redis is not running',
     'optional service: its tests skip, with the reason, when it is absent'),
    (r'^reference text .* not found next to the checkout',
     'a checkout without ../shared/: the committed fixture is checked '
     'instead'),
    (r' supports reflinks$',
     'the temporary directory is on a reflink filesystem: there is no '
     'refusal to test'),
]

_skipped = []


def _reason(report):
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ''
    return str(reason).removeprefix('Skipped: ')


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, 'wasxfail'):
        _skipped.append((report.nodeid, _reason(report)))


def pytest_collectreport(report):   # a module that skips itself whole
    pytest_runtest_logreport(report)


def _not_allowed():
    return [(nodeid, reason) for nodeid, reason in _skipped
            if not any(re.search(pattern, reason) for pattern, _ in ALLOWED)]


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get('CI') == 'true' and exitstatus == 0 and _not_allowed():
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if os.environ.get('CI') != 'true' or not _not_allowed():
        return
    terminalreporter.section('skips not on tests/skip_allowlist.py (CI fails)')
    for nodeid, reason in _not_allowed():
        terminalreporter.line('%s: %s' % (nodeid, reason))

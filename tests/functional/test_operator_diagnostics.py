"""SIGUSR2 makes a running worker write a Guru Meditation report."""

import glob
import os
import re
import signal

import pytest

from tests.functional.test_crash_recovery import CrashRig
from volume_worker.testing import state


@pytest.mark.parametrize('executor', ['eventlet', 'threading'])
def test_sigusr2_writes_a_report_with_the_operations_in_flight(tmp_path,
                                                                executor):
    rig = CrashRig(tmp_path, executor=executor)
    reports = tmp_path / 'reports'
    reports.mkdir()
    with open(rig.conf_path, 'a') as f:
        f.write('\n[oslo_reports]\nlog_dir = %s\n' % reports)
    rig.clear_faults()
    try:
        rig.start()
        volume_id = rig.cast_create()
        rig.hang({volume_id: 'create_volume'})
        rig.wait_inside({volume_id: 'create_volume'})
        os.kill(rig.worker.pid, signal.SIGUSR2)
        found = state.wait_until(
            lambda: glob.glob(str(reports / 'volume-worker_gurumeditation_*')),
            20, 'a report file')
        state.wait_until(lambda: 'In-flight operations' in open(
            found[0]).read(), 10, 'the report written out')
        text = open(found[0]).read()
        for section in ('Package', 'Threads', 'Green Threads',
                        'Configuration', 'In-flight operations'):
            assert re.search(r'====\s+%s\s+====' % section, text), section
        in_flight = text.split('In-flight operations', 1)[1]
        assert volume_id in in_flight and 'create_volume' in in_flight
        # The stack of the hung driver call is there.
        assert '_maybe_hang' in text
        # Secrets are masked.
        assert 'guest:guest' not in text
        assert rig.worker.proc.poll() is None  # and the worker goes on
    finally:
        if rig.worker is not None:
            rig.kill()
        rig.clear_faults()
        rig.close()

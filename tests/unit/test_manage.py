"""volume-worker-manage against a real SQLite database."""

import json
import os
import subprocess
import sys

BIN = os.path.join(os.path.dirname(sys.executable), 'volume-worker-manage')


def _run(conf, *args):
    return subprocess.run([BIN, '--config-file', str(conf), *args],
                          capture_output=True, text=True, timeout=60)


def test_db_sync_then_service_and_journal_lists(tmp_path):
    conf = tmp_path / 'w.conf'
    conf.write_text('[DEFAULT]\nstate_path = %s\n' % tmp_path)
    out = _run(conf, 'db', 'version')
    assert out.stdout.strip() == 'empty'
    out = _run(conf, 'db', 'sync')
    assert out.returncode == 0 and 'migrated' in out.stdout
    assert 'unchanged' in _run(conf, 'db', 'sync').stdout
    from volume_worker.db import migration
    assert _run(conf, 'db', 'version').stdout.strip() == (
        migration.head_revision())

    from volume_worker.db import api as db
    db.configure('sqlite:///%s/volume-worker.sqlite' % tmp_path)
    try:
        db.service_create({'host': 'n@b', 'binary': 'volume-worker',
                           'topic': 't', 'updated_at': db.utcnow()})
        db.OperationJournal.start(
            'op1', 'n@b', 'create_snapshot',
            [['snapshot', 'snapshot', 's1'], ['volume', 'volume', 'v1']],
            {}).flush()
    finally:
        db.dispose()
    services = json.loads(_run(conf, 'service', 'list').stdout)
    assert [(s['host'], s['state']) for s in services] == [('n@b', 'up')]
    journal = json.loads(_run(conf, 'journal', 'list').stdout)
    assert [(j['id'], j['operation'], [r['id'] for r in j['resources']])
            for j in journal] == [('op1', 'create_snapshot', ['s1', 'v1'])]
    bad = _run(conf, 'db', 'explode')
    assert bad.returncode != 0 and 'unknown command' in bad.stderr

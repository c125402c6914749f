"""TLS to RabbitMQ: a real TLS listener, on a RabbitMQ node of the test's own.

The node (``volume_worker.testing.rabbit_node``) listens only with TLS, with
a CA and a certificate made by the test. A worker, its RPC client and a
notification listener work through it with ``[oslo_messaging_rabbit] ssl``
and ``ssl_ca_file``; with another CA the worker and the client each refuse
in one line, at once.
"""

import os
import subprocess
import sys
import time

import pytest

from tests.functional.conftest import start_harness
from volume_worker.testing import process
from volume_worker.testing import rabbit_node

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
]


@pytest.fixture(scope='module')
def tls_node(tmp_path_factory):
    base = tmp_path_factory.mktemp('tls-broker')
    pki = rabbit_node.make_pki(str(base / 'pki'))
    node = rabbit_node.TlsRabbitNode(str(base / 'node'), pki)
    try:
        node.start()
    except rabbit_node.NodeUnavailable as exc:
        pytest.skip(str(exc))
    yield node
    node.stop()


def tls_sections(ca_file):
    return {'oslo_messaging_rabbit': {'ssl': 'true', 'ssl_ca_file': ca_file}}


def test_worker_and_client_over_tls(tmp_path, tls_node):
    h = start_harness(tmp_path,
                      extra_default={'transport_url': tls_node.url()},
                      sections=tls_sections(tls_node.pki['ca']))
    try:
        volume = h.new_volume()
        h.api.create_volume(h.ctx, h.backend(), volume)
        h.wait_notification('volume.create.end', volume.id)
        assert h.wait_status(volume.id, ('available',)).status == 'available'
        h.api.delete_volume(h.ctx, h.backend(), volume.id)
        h.wait_notification('volume.delete.end', volume.id)
    finally:
        h.close()
        h.worker.stop()
    # Only TLS reached the node: its plain AMQP port is closed.
    log = open(os.path.join(tls_node.directory, 'log',
                            '%s.log' % tls_node.name)).read()
    assert 'started TLS (SSL) listener on 127.0.0.1:%d' % tls_node.port in log
    assert 'started TCP listener' not in log


def test_a_wrong_ca_is_refused_in_one_line(tmp_path, tls_node):
    other = rabbit_node.make_pki(str(tmp_path / 'other-pki'), name='other')
    state = str(tmp_path / 'state')
    conf_path, _settings = process.write_config(
        state, extra_default={'transport_url': tls_node.url()},
        sections=tls_sections(other['ca']))

    worker = process.WorkerProcess(conf_path).start(wait_ready=False)
    try:
        assert worker.proc.wait(60) == 2
    finally:
        worker.stop()
    text = worker.log_text()
    refusals = [line for line in text.splitlines()
                if 'cannot start' in line]
    assert len(refusals) == 1, text
    assert ('127.0.0.1:%d presented a TLS certificate that '
            '[oslo_messaging_rabbit] ssl_ca_file %s does not trust'
            % (tls_node.port, other['ca'])) in refusals[0]
    assert 'Traceback' not in text

    started = time.monotonic()
    client = subprocess.run(
        [sys.executable, '-m', 'volume_worker.cmd.client', '--config-file',
         conf_path, 'list'], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert client.returncode != 0
    # Refused, not retried until [client] cast_retry_deadline (30 s).
    assert time.monotonic() - started < 25
    errors = [line for line in client.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, client.stderr
    assert 'does not trust' in errors[0]
    assert 'Traceback' not in client.stderr


def test_without_ssl_ca_file_the_system_cas_decide(tmp_path, tls_node):
    """The test's CA is in no system store: refused, naming the store."""
    conf_path, _settings = process.write_config(
        str(tmp_path / 'state'),
        extra_default={'transport_url': tls_node.url()},
        sections={'oslo_messaging_rabbit': {'ssl': 'true'}})
    worker = process.WorkerProcess(conf_path).start(wait_ready=False)
    try:
        assert worker.proc.wait(60) == 2
    finally:
        worker.stop()
    assert ('presented a TLS certificate that the system\'s CA store does '
            'not trust') in worker.log_text()

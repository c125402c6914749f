"""The worker on a broker user scoped to its own vhost, exchanges and queues.

The vhost and user are made on the local RabbitMQ with unique names and
deleted after (every queue and exchange in the vhost goes with it). The
permission regexes are the README's.
"""

import shutil
import uuid

import kombu
import pytest

from tests.functional.conftest import start_harness

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
]

# What the worker and its clients declare and use (README, "Security"):
# the control exchange and its queues, the scheduler's fanout exchange,
# reply queues, notification queues, and the default exchange (amq.default,
# which replies are published to).
SCOPE = (r'^(volume-worker.*|volume-scheduler.*|reply_.*|notifications\..*'
         r'|amq\.default)$')


def rabbitmqctl(*args):
    from volume_worker.testing import process
    result = process.rabbitmqctl(*args)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


@pytest.fixture
def scoped_user():
    if shutil.which('rabbitmqctl') is None:
        pytest.skip('rabbitmqctl missing (Debian package rabbitmq-server)')
    name = 'vw-scoped-%s' % uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex
    rabbitmqctl('add_vhost', name)
    try:
        rabbitmqctl('add_user', name, password)
        try:
            rabbitmqctl('set_permissions', '-p', name, name,
                        SCOPE, SCOPE, SCOPE)
            yield name, password
        finally:
            rabbitmqctl('delete_user', name)
    finally:
        rabbitmqctl('delete_vhost', name)


def test_worker_serves_with_a_scoped_user(tmp_path, scoped_user):
    user, password = scoped_user
    url = 'rabbit://%s:%s@127.0.0.1:5672/%s' % (user, password, user)
    # A topic of its own would fall outside the scope: this vhost is the
    # worker's alone, so the default names are safe.
    h = start_harness(tmp_path, extra_default={'transport_url': url},
                      scheduler_topic='volume-scheduler')
    try:
        volume = h.new_volume()
        h.api.create_volume(h.ctx, h.backend(), volume)
        h.wait_notification('volume.create.end', volume.id)
        h.wait_status(volume.id, ('available',))    # a call: reply queues
        h.wait_event(lambda e: e['kind'] == 'capabilities', timeout=30)
        h.api.delete_volume(h.ctx, h.backend(), volume.id)
        h.wait_notification('volume.delete.end', volume.id)
        assert 'ACCESS_REFUSED' not in h.worker.log_text()
    finally:
        h.close()
        h.api.transport.cleanup()  # before its user is deleted
        h.worker.stop()

    # The user reaches nothing else: another queue, another vhost.
    amqp = 'amqp://%s:%s@127.0.0.1:5672/%s' % (user, password, user)
    with kombu.Connection(amqp, connect_timeout=5) as conn:
        channel = conn.channel()
        with pytest.raises(conn.channel_errors, match='ACCESS_REFUSED'):
            channel.queue_declare('not-the-workers', auto_delete=True)
    with pytest.raises(Exception, match='(?i)access|not_allowed|refused'):
        with kombu.Connection('amqp://%s:%s@127.0.0.1:5672//'
                              % (user, password), connect_timeout=5) as c:
            c.connect()

"""The project's [oslo_messaging_rabbit] defaults and the connection pool sizing."""

import pytest
from oslo_config import cfg

from volume_worker import config
from volume_worker import opts


def _conf(tmp_path, text=''):
    path = tmp_path / 'volume-worker.conf'
    path.write_text(text)
    return config.parse_args(['--config-file', str(path)],
                             conf=cfg.ConfigOpts(), default_config_files=[])


def test_queues_are_quorum_and_durable_by_default(tmp_path):
    conf = _conf(tmp_path)
    rabbit = conf.oslo_messaging_rabbit
    assert rabbit.rabbit_quorum_queue is True
    assert rabbit.rabbit_quorum_delivery_limit == 20
    assert rabbit.rabbit_transient_quorum_queue is False
    assert opts.exchange_durable(conf) is True


def test_operators_can_go_back_to_classic_queues(tmp_path):
    conf = _conf(tmp_path, '[oslo_messaging_rabbit]\n'
                           'rabbit_quorum_queue = false\n')
    assert opts.exchange_durable(conf) is False
    conf = _conf(tmp_path, '[oslo_messaging_rabbit]\n'
                           'rabbit_quorum_queue = false\n'
                           'amqp_durable_queues = true\n')
    assert opts.exchange_durable(conf) is True


def test_the_sample_shows_the_project_defaults():
    import os
    sample = os.path.join(os.path.dirname(__file__), '..', '..', 'etc',
                          'volume-worker', 'volume-worker.conf.sample')
    with open(sample) as f:
        text = f.read()
    assert '#rabbit_quorum_queue = true' in text
    assert '#rabbit_quorum_delivery_limit = 20' in text
    assert '#rabbit_transient_quorum_queue = false' in text


@pytest.mark.parametrize('backends,cluster,expected', [
    ('b1', None, 64 + opts.CONNECTION_POOL_RESERVE),
    ('b1,b2', None, 2 * 64 + opts.CONNECTION_POOL_RESERVE),
    ('b1,b2', 'c1', 4 * 64 + opts.CONNECTION_POOL_RESERVE),
])
def test_connection_pool_fits_the_worker_concurrency(tmp_path, backends,
                                                     cluster, expected):
    from volume_worker import service
    text = '[DEFAULT]\nenabled_backends = %s\n' % backends
    if cluster:
        text += 'cluster = %s\n' % cluster
    conf = _conf(tmp_path, text)
    service.size_connection_pools(conf)
    assert conf.oslo_messaging_rabbit.rpc_conn_pool_size == expected


def test_an_explicit_pool_size_is_kept(tmp_path, caplog):
    from volume_worker import service
    conf = _conf(tmp_path, '[oslo_messaging_rabbit]\nrpc_conn_pool_size = 10\n')
    service.size_connection_pools(conf)
    assert conf.oslo_messaging_rabbit.rpc_conn_pool_size == 10
    assert 'bursts will wait for connections' in caplog.text
    conf = _conf(tmp_path, '[DEFAULT]\nexecutor_thread_pool_size = 8\n'
                           '[oslo_messaging_rabbit]\nrpc_conn_pool_size = 30\n')
    caplog.clear()
    service.size_connection_pools(conf)
    assert conf.oslo_messaging_rabbit.rpc_conn_pool_size == 30
    assert 'bursts' not in caplog.text


def test_queues_are_not_declared_early_on_other_transports():
    import oslo_messaging as messaging
    from volume_worker import rpc
    conf = cfg.ConfigOpts()
    opts.set_defaults(conf)
    conf([], default_config_files=[])
    transport = messaging.get_rpc_transport(conf, url='fake://')
    try:
        assert rpc.declare_server_queues(transport, 'topic', ['h@b']) is None
    finally:
        transport.cleanup()

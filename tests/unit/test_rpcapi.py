"""The client API: versions per method, the upgrade cap, the version history.

Unit tests on oslo.messaging's in-process ``fake://`` transport: nothing here
is sent to a worker (a capped method is refused before sending).
"""

import inspect
import re

import pytest

from volume_worker import config
from volume_worker import exception
from volume_worker import manager
from volume_worker import rpcapi


@pytest.fixture
def conf(tmp_path):
    from oslo_config import cfg
    path = tmp_path / 'c.conf'
    path.write_text('[DEFAULT]\ntransport_url = fake://\n')
    cfg.CONF.reset()
    cfg.CONF.clear()
    yield config.parse_args(['--config-file', str(path)])
    cfg.CONF.reset()
    cfg.CONF.clear()


def _sent_versions(api, monkeypatch):
    from oslo_messaging.rpc import client as rpc_client
    sent = []

    def record(context, ctxt, method, **kwargs):
        sent.append(context.target.version)
    monkeypatch.setattr(rpc_client._BaseCallContext, 'cast', record)
    monkeypatch.setattr(rpc_client._BaseCallContext, 'call', record)
    return sent


def test_capped_client_refuses_newer_methods_clearly(conf, monkeypatch):
    conf.set_override('volume', '1.0', group='upgrade_levels')
    api = rpcapi.VolumeAPI(conf)
    sent = _sent_versions(api, monkeypatch)
    api.delete_volume(None, 'h@b', 'v')
    assert sent == ['1.0']
    with pytest.raises(exception.RPCVersionTooNew,
                       match=r'create_snapshot needs RPC API 1.1.*capped '
                             r'at 1.0'):
        api.create_snapshot(None, 'h@b', object())
    assert sent == ['1.0']


def test_each_method_sends_the_version_that_introduced_it(conf, monkeypatch):
    api = rpcapi.VolumeAPI(conf)
    sent = _sent_versions(api, monkeypatch)
    from volume_worker import objects
    api.create_volume(None, 'h@b', objects.Volume(id='v', size=1))
    api.get_snapshot(None, 'h@b', 's')
    api.create_volume(None, 'h@b', objects.Volume(id='v', size=1,
                                                  snapshot_id='s'))
    api.extend_volume(None, 'h@b', 'v', 2)
    assert sent == ['1.0', '1.1', '1.2', '1.2']


def test_history_names_every_rpc_method_and_the_current_version():
    history = rpcapi.__doc__
    versions = re.findall(r'^\s+(\d+\.\d+) - ', history, re.M)
    assert versions[-1] == rpcapi.RPC_API_VERSION
    assert manager.VolumeManager.target.version == rpcapi.RPC_API_VERSION
    exposed = {name for name, fn in inspect.getmembers(manager.VolumeManager)
               if getattr(fn, 'exposed', False)}
    for name in exposed:
        assert name in history, '%s is missing from the history' % name
        assert hasattr(rpcapi.VolumeAPI, name), name
    # Nothing else is reachable over the wire.
    assert 'recover' not in exposed and '_get' not in exposed


def test_every_rpc_method_has_a_client_subcommand():
    from volume_worker.cmd import client
    exposed = {name for name, fn in inspect.getmembers(manager.VolumeManager)
               if getattr(fn, 'exposed', False)}
    commands = {c.method for c in client.COMMANDS}
    # (fanouts to every worker have no resource to name; failover_completed
    # goes from worker to worker)
    assert exposed - commands == {'publish_service_capabilities',
                                  'failover_completed'}
    assert commands <= exposed
    names = [c.name for c in client.COMMANDS]
    assert names == [m.replace('_', '-') for m in
                     (c.method for c in client.COMMANDS)]

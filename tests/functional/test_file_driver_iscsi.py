"""FileVolumeDriver exporting over iSCSI through a real tgtd, checked with
real userspace initiators (libiscsi's iscsi-inq/readcapacity16, qemu-img).

The tests start their own tgtd on a free control port and portal so they
never touch an operator's instance, and stop it the way tgtd needs: delete
every target with --force, then ``--op delete --mode system``.
"""

import os
import shutil
import subprocess
import threading
import types
import uuid

import pytest
from oslo_config import cfg

from drivers import configuration
from drivers import exception
from drivers import file as file_driver
from volume_worker.testing import tgtd as tgtd_process

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
    pytest.mark.filterwarnings('ignore::DeprecationWarning'),
]

GiB = 1 << 30
MiB = 1 << 20
PREFIX = 'iqn.2010-10.org.volume-worker.test:'

TOOLS = {'tgtd': 'tgt', 'tgtadm': 'tgt', 'iscsi-inq': 'libiscsi-bin',
         'iscsi-readcapacity16': 'libiscsi-bin', 'qemu-img': 'qemu-utils'}


def _require_tools():
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            pytest.skip('%s missing (install the Debian package %s)'
                        % (tool, package))
    if os.geteuid() != 0:
        pytest.skip('tgtd needs root')


@pytest.fixture(scope='module')
def tgtd(tmp_path_factory):
    _require_tools()
    try:
        daemon = tgtd_process.Tgtd.on_free_ports(
            str(tmp_path_factory.mktemp('tgtd')))
        daemon.start()
    except tgtd_process.TgtdUnavailable as exc:
        pytest.skip(str(exc))
    yield daemon
    daemon.stop()


def make_driver(directory, daemon, **overrides):
    conf = cfg.ConfigOpts()
    section = configuration.Configuration([], config_group='file1', conf=conf)
    driver = file_driver.FileVolumeDriver(configuration=section)
    options = {'file_volume_dir': str(directory), 'target_protocol': 'iscsi',
               'use_chap_auth': True, 'report_discard_supported': True,
               'target_ip_address': '127.0.0.1',
               'target_port': daemon.portal_port, 'target_prefix': PREFIX,
               'file_tgt_control_port': daemon.control_port}
    options.update(overrides)
    for name, value in options.items():
        conf.set_override(name, value, group='file1')
    driver.do_setup(None)
    driver.check_for_setup_error()
    return driver


@pytest.fixture
def driver(tmp_path, tgtd):
    drv = make_driver(tmp_path / 'volumes', tgtd)
    yield drv
    for target in tgtd.targets().values():
        tgtd.tgtadm('--op', 'delete', '--mode', 'target', '--force',
                    '--tid', target.tid, check=False)


def new_volume(size=1):
    return types.SimpleNamespace(id=str(uuid.uuid4()), size=size,
                                 provider_location=None, provider_auth=None)


def export(driver, volume):
    update = driver.create_export(None, volume, {'initiator': 'iqn.test:i'})
    for key, value in update.items():
        setattr(volume, key, value)
    return driver.initialize_connection(volume, {'initiator': 'iqn.test:i'})


def url(data, user=None, password=None):
    auth = ''
    if user is not None:
        auth = '%s%%%s@' % (user, password)
    return 'iscsi://%s%s/%s/%d' % (auth, data['target_portal'],
                                   data['target_iqn'], data['target_lun'])


def initiator(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def qemu_write(data, source, tmp_path):
    """Write the file ``source`` onto the iSCSI LUN of connection ``data``
    with qemu-img, the CHAP secret passed in a file (never on argv)."""
    secret = tmp_path / 'chap-secret'
    secret.write_text(data['auth_password'])
    secret.chmod(0o600)
    host, port = data['target_portal'].rsplit(':', 1)
    target_opts = ','.join([
        'driver=raw', 'file.driver=iscsi', 'file.transport=tcp',
        'file.portal=%s:%s' % (host, port),
        'file.target=%s' % data['target_iqn'],
        'file.lun=%d' % data['target_lun'],
        'file.user=%s' % data['auth_username'],
        'file.password-secret=s0'])
    return subprocess.run(
        ['qemu-img', 'convert', '-n', '-f', 'raw',
         '--object', 'secret,id=s0,file=%s' % secret,
         '--target-image-opts', str(source), target_opts],
        capture_output=True, text=True, timeout=60)


def test_export_is_visible_to_a_real_initiator(driver, tgtd):
    vol = new_volume(size=2)
    driver.create_volume(vol)
    info = export(driver, vol)
    data = info['data']

    assert info['driver_volume_type'] == 'iscsi'
    assert data['target_discovered'] is False
    assert data['target_iqn'] == PREFIX + 'volume-' + vol.id
    assert data['target_portal'] == '127.0.0.1:%d' % tgtd.portal_port
    assert data['target_lun'] == 1
    assert data['volume_id'] == vol.id
    assert data['auth_method'] == 'CHAP'
    assert data['discard'] is True
    assert 'target_portals' not in data
    assert vol.provider_auth == 'CHAP %s %s' % (data['auth_username'],
                                                data['auth_password'])
    assert vol.provider_location == '127.0.0.1:%d,1 %s 1' % (
        tgtd.portal_port, data['target_iqn'])

    good = url(data, data['auth_username'], data['auth_password'])
    inq = initiator('iscsi-inq', good)
    assert inq.returncode == 0, inq.stderr
    assert 'DIRECT_ACCESS' in inq.stdout
    cap = initiator('iscsi-readcapacity16', good)
    assert cap.returncode == 0, cap.stderr
    assert 'Total size:%d' % (2 * GiB) in cap.stdout


@pytest.mark.parametrize('credentials', ['wrong-secret', 'wrong-user', None])
def test_wrong_or_missing_chap_is_refused(driver, credentials):
    vol = new_volume()
    driver.create_volume(vol)
    data = export(driver, vol)['data']
    user, password = data['auth_username'], data['auth_password']
    if credentials == 'wrong-secret':
        target = url(data, user, password[::-1] + 'x')
    elif credentials == 'wrong-user':
        target = url(data, user + 'x', password)
    else:
        target = url(data)
    result = initiator('iscsi-readcapacity16', target)
    assert result.returncode != 0
    assert 'Authentication failure' in result.stdout + result.stderr


def test_bytes_written_over_iscsi_land_in_the_file(driver, tmp_path):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    data = export(driver, vol)['data']
    payload = os.urandom(4 * MiB)
    source = tmp_path / 'payload.raw'
    source.write_bytes(payload)
    result = qemu_write(data, source, tmp_path)
    assert result.returncode == 0, result.stderr
    assert data['auth_password'] not in ' '.join(result.args)

    with open(driver.local_path(vol), 'rb') as f:
        assert f.read(len(payload)) == payload
        assert f.read(MiB) == bytes(MiB)


def test_without_chap_the_target_is_open_and_discard_as_configured(
        tmp_path, tgtd):
    drv = make_driver(tmp_path / 'open', tgtd, use_chap_auth=False,
                      report_discard_supported=False)
    vol = new_volume()
    drv.create_volume(vol)
    info = export(drv, vol)
    data = info['data']
    assert vol.provider_auth is None
    assert 'auth_method' not in data and data['discard'] is False
    inq = initiator('iscsi-inq', url(data))
    assert inq.returncode == 0, inq.stderr
    assert tgtd.accounts() == [] or all(
        vol.id not in a for a in tgtd.accounts())
    drv.ensure_export(None, vol)  # converges on the same open export
    assert data['target_iqn'] in tgtd.targets()
    drv.remove_export(None, vol)
    assert data['target_iqn'] not in tgtd.targets()


def test_remove_export_tears_down_target_and_account(driver, tgtd):
    vol = new_volume()
    driver.create_volume(vol)
    data = export(driver, vol)['data']
    assert data['target_iqn'] in tgtd.targets()
    assert data['auth_username'] in tgtd.accounts()

    driver.terminate_connection(vol, {'initiator': 'iqn.test:i'})
    driver.remove_export(None, vol)
    assert data['target_iqn'] not in tgtd.targets()
    assert data['auth_username'] not in tgtd.accounts()
    good = url(data, data['auth_username'], data['auth_password'])
    assert initiator('iscsi-inq', good).returncode != 0
    driver.remove_export(None, vol)                 # already gone: fine
    driver.remove_export(None, new_volume())        # never exported: fine


def test_create_export_is_idempotent(driver, tgtd):
    vol = new_volume()
    driver.create_volume(vol)
    first = export(driver, vol)['data']
    tid = tgtd.targets()[first['target_iqn']].tid
    again = export(driver, vol)['data']
    assert again == first                       # same credentials reused
    assert tgtd.targets()[first['target_iqn']].tid == tid


def test_ensure_export_after_tgtd_restart(driver, tgtd):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    data = export(driver, vol)['data']
    good = url(data, data['auth_username'], data['auth_password'])
    driver.ensure_export(None, vol)             # already there: no-op
    assert len(tgtd.targets()) == 1

    tgtd.kill()
    tgtd.start()
    assert tgtd.targets() == {}
    assert initiator('iscsi-inq', good).returncode != 0

    assert driver.ensure_export(None, vol) is None
    assert initiator('iscsi-inq', good).returncode == 0
    cap = initiator('iscsi-readcapacity16', good)
    assert 'Total size:%d' % GiB in cap.stdout
    # A worker restart (fresh driver object) converges on the same export.
    restarted = make_driver(driver.layout.directory, tgtd)
    restarted.ensure_export(None, vol)
    assert list(tgtd.targets()) == [data['target_iqn']]


def test_ensure_exports_reads_the_target_table_once(driver, tgtd):
    """A start-up's batch: one listing of tgtd's targets, whatever their
    number; only the missing exports are made again."""
    volumes = [new_volume() for _ in range(4)]
    urls = []
    for vol in volumes:
        driver.create_volume(vol)
        data = export(driver, vol)['data']
        urls.append(url(data, data['auth_username'], data['auth_password']))
    calls = []
    real = driver.tgt._request

    def counting(port, mode, op, **kwargs):
        calls.append(op)
        return real(port, mode, op, **kwargs)
    driver.tgt._request = counting

    def shows():
        return calls.count('show')

    assert driver.ensure_exports(None, volumes) == ({}, {})
    assert shows() == 1 and len(calls) == 1     # all there: nothing made

    tgtd.kill()
    tgtd.start()
    calls.clear()
    gone = new_volume()                          # its file does not exist
    gone.provider_location = volumes[0].provider_location
    updates, failures = driver.ensure_exports(None, volumes + [gone])
    assert updates == {} and set(failures) == {gone.id}
    assert shows() == 1
    assert sorted(tgtd.targets()) == sorted(
        driver._target_iqn(vol) for vol in volumes)
    for good in urls:
        assert initiator('iscsi-inq', good).returncode == 0


def test_ensure_export_repairs_a_partial_export(driver, tgtd):
    vol = new_volume()
    driver.create_volume(vol)
    data = export(driver, vol)['data']
    tid = tgtd.targets()[data['target_iqn']].tid
    # Crash between steps: the account binding is lost.
    tgtd.tgtadm('--op', 'unbind', '--mode', 'account', '--tid', tid,
                '--user', data['auth_username'])
    driver.ensure_export(None, vol)
    target = tgtd.targets()[data['target_iqn']]
    assert target.accounts == [data['auth_username']]
    good = url(data, data['auth_username'], data['auth_password'])
    assert initiator('iscsi-inq', good).returncode == 0


def test_tids_are_allocated_around_foreign_targets(driver, tgtd):
    tgtd.tgtadm('--op', 'new', '--mode', 'target', '--tid', 1,
                '-T', 'iqn.2000-01.other:not-ours')
    volumes = [new_volume() for _ in range(3)]
    for vol in volumes:
        driver.create_volume(vol)
        export(driver, vol)
    tids = {t.iqn: t.tid for t in tgtd.targets().values()}
    assert tids['iqn.2000-01.other:not-ours'] == 1
    assert sorted(tids.values()) == [1, 2, 3, 4]
    driver.remove_export(None, volumes[0])
    late = new_volume()
    driver.create_volume(late)
    export(driver, late)
    assert tgtd.targets()[PREFIX + 'volume-' + late.id].tid == 2


def test_concurrent_exports_from_two_workers_get_distinct_tids(tmp_path,
                                                               tgtd):
    # Two driver objects stand for two worker processes: no shared lock,
    # tgtd refuses the clashing tid and the loser retries.
    workers = [make_driver(tmp_path / 'volumes', tgtd) for _ in range(2)]
    volumes = [new_volume() for _ in range(8)]
    for vol in volumes:
        workers[0].create_volume(vol)
    errors = []

    def run(drv, vols):
        try:
            for vol in vols:
                export(drv, vol)
        except Exception as exc:                # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w, volumes[i::2]))
               for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    targets = tgtd.targets()
    assert len(targets) == 8
    assert len({t.tid for t in targets.values()}) == 8
    for target in targets.values():
        assert target.luns[1].startswith(str(tmp_path))
        tgtd.tgtadm('--op', 'delete', '--mode', 'target', '--force',
                    '--tid', target.tid)


def test_delete_volume_removes_its_export(driver, tgtd):
    vol = new_volume()
    driver.create_volume(vol)
    data = export(driver, vol)['data']
    driver.delete_volume(vol)
    assert data['target_iqn'] not in tgtd.targets()
    assert not os.path.exists(driver.local_path(vol))


def test_revert_of_an_exported_volume_is_refused(driver):
    vol = new_volume()
    driver.create_volume(vol)
    snap = types.SimpleNamespace(id=str(uuid.uuid4()), volume_id=vol.id)
    driver.create_snapshot(snap)
    export(driver, vol)
    with pytest.raises(exception.VolumeIsBusy, match='exported'):
        driver.revert_to_snapshot(None, vol, snap)
    driver.remove_export(None, vol)
    driver.revert_to_snapshot(None, vol, snap)


def test_multipath_properties_with_secondary_portals(tmp_path, tgtd):
    drv = make_driver(tmp_path / 'volumes', tgtd,
                      target_secondary_ip_addresses=['127.0.0.2'])
    vol = new_volume()
    drv.create_volume(vol)
    data = export(drv, vol)['data']
    port = tgtd.portal_port
    assert vol.provider_location.startswith(
        '127.0.0.1:%d;127.0.0.2:%d,1 ' % (port, port))
    assert data['target_portal'] == '127.0.0.1:%d' % port
    assert data['target_portals'] == ['127.0.0.1:%d' % port,
                                      '127.0.0.2:%d' % port]
    assert data['target_iqns'] == [data['target_iqn']] * 2
    assert data['target_luns'] == [1, 1]
    drv.remove_export(None, vol)


def test_stats_report_iscsi(driver):
    stats = driver.get_volume_stats(refresh=True)
    assert stats['storage_protocol'] == 'iSCSI'


def test_setup_error_when_tgtd_is_unreachable(tmp_path, tgtd):
    with pytest.raises(exception.VolumeBackendAPIException,
                       match='tgtd running'):
        make_driver(tmp_path / 'volumes', tgtd,
                    file_tgt_control_port=tgtd.control_port + 1000)


def test_setup_check_asks_tgtd_one_small_question(driver, tgtd):
    """check_for_setup_error runs at every start-up: it must not list every
    target (seconds with 10,000 of them), only see that tgtd answers."""
    vol = new_volume()
    driver.create_volume(vol)
    export(driver, vol)
    asked = []
    real = driver.tgt._request

    def counting(port, mode, op, **kwargs):
        asked.append((mode, op))
        return real(port, mode, op, **kwargs)
    driver.tgt._request = counting
    driver.check_for_setup_error()
    assert asked == [('system', 'show')]

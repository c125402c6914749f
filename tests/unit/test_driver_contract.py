"""drivers.base against Cinder's reference text for ``cinder.volume.driver``.

Every class the reference lists exists with the reference's bases, and
defines every member the reference lists for it with a compatible signature
(the reference's parameters first, in its order, with its defaults; anything
added is optional).  The reference's signatures come from the committed
fixture driver_contract.json, extracted from
``<checkout>/../shared/seed/cinder-volume-driver.txt`` by
``tools/extract-driver-contract``; when that text is present, the fixture is
checked to still match it.  The documented return conventions are checked on
``drivers.fake.FakeDriver``.
"""

import ast
import importlib.machinery
import importlib.util
import inspect
import json
import os
import pathlib
import types
import uuid

import pytest
from oslo_config import cfg

from drivers import base
from drivers import configuration
from drivers import fake

HERE = pathlib.Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
FIXTURE = HERE / 'driver_contract.json'
TOOL = CHECKOUT / 'tools' / 'extract-driver-contract'
SEED_NAME = 'cinder-volume-driver.txt'

CONTRACT = json.loads(FIXTURE.read_text(encoding='utf-8'))
CLASSES = {cls['name']: cls for cls in CONTRACT['classes']}
MEMBERS = [(cls['name'], member) for cls in CONTRACT['classes']
           for member in cls['members']]
P = inspect.Parameter


def seed_path():
    """The reference text: $VW_DRIVER_REFERENCE, else ../shared/seed/."""
    candidates = [os.environ.get('VW_DRIVER_REFERENCE'),
                  CHECKOUT.parent / 'shared' / 'seed' / SEED_NAME]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return str(candidate)
    return None


def load_tool():
    loader = importlib.machinery.SourceFileLoader('extract_driver_contract',
                                                  str(TOOL))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def default_text(value):
    """A default as the reference prints it (functions by name)."""
    if callable(value) and hasattr(value, '__name__'):
        return '<function %s>' % value.__name__
    return repr(value)


def incompatibilities(reference, params):
    """Why ``params`` cannot stand in for the reference's; [] if they can."""
    problems = []
    positional = [p for p in params
                  if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    wanted = [r for r in reference if r['kind'] == 'positional']
    names = [p.name for p in positional]
    if names[:len(wanted)] != [r['name'] for r in wanted]:
        problems.append('positional parameters %s, the reference has %s'
                        % (names, [r['name'] for r in wanted]))
    else:
        for ref, param in zip(wanted, positional):
            have = (None if param.default is P.empty
                    else default_text(param.default))
            if have != ref.get('default'):
                problems.append('%s defaults to %s, the reference to %s'
                                % (param.name, have, ref.get('default')))
    for param in positional[len(wanted):]:
        if param.default is P.empty:
            problems.append('added parameter %s has no default' % param.name)
    kinds = {param.kind for param in params}
    by_name = {param.name: param for param in params}
    for ref in reference:
        if ref['kind'] == 'var_positional' and P.VAR_POSITIONAL not in kinds:
            problems.append('no *%s' % ref['name'])
        elif ref['kind'] == 'var_keyword' and P.VAR_KEYWORD not in kinds:
            problems.append('no **%s' % ref['name'])
        elif ref['kind'] == 'keyword_only' and ref['name'] not in by_name:
            problems.append('no keyword %s' % ref['name'])
    known = {ref['name'] for ref in reference}
    for param in params:
        if (param.kind == P.KEYWORD_ONLY and param.default is P.empty
                and param.name not in known):
            problems.append('added keyword %s is required' % param.name)
    return problems


def parameters(func, bound=True):
    params = list(inspect.signature(func).parameters.values())
    return params[1:] if bound else params


# -- the fixture and the reference --------------------------------------------

def test_fixture_matches_the_reference_text():
    seed = seed_path()
    if seed is None:
        pytest.skip('reference text %s not found next to the checkout '
                    '(../shared/seed/) nor in $VW_DRIVER_REFERENCE; the '
                    'committed fixture is checked instead' % SEED_NAME)
    fresh = load_tool().contract(seed)
    assert fresh['classes'] == CONTRACT['classes'], (
        'driver_contract.json is stale: run tools/extract-driver-contract')


def test_fixture_holds_the_whole_reference():
    assert len(CLASSES) == 16
    assert len(MEMBERS) == 133
    assert CLASSES['BaseVD']['signature'][0] == {
        'name': 'execute', 'kind': 'positional',
        'default': '<function execute>'}


def test_extractor_tells_members_from_prose():
    text = '\n'.join([
        'class Demo(a, *args, **kwargs)', '', 'Bases: pkg.mod.Base, object',
        '', 'model_update', '', 'model_update will be returned.',
        'VERSION = \'1\'', 'alpha(x, y=None)', 'ready',
        'static zeta(conn, setting)', 'provider_auth',
        'if present, the credentials.', 'Previous topic', 'omega()'])
    [demo] = load_tool().parse(text)
    assert demo['bases'] == ['Base', 'object']
    assert [(m['name'], m['kind']) for m in demo['members']] == [
        ('VERSION', 'attribute'), ('alpha', 'method'), ('ready', 'property'),
        ('zeta', 'staticmethod')]
    assert demo['members'][1]['parameters'] == [
        {'name': 'x', 'kind': 'positional'},
        {'name': 'y', 'kind': 'positional', 'default': 'None'}]


def test_compatibility_check_catches_mismatches():
    ref = [{'name': 'volume', 'kind': 'positional'},
           {'name': 'connector', 'kind': 'positional'},
           {'name': 'kwargs', 'kind': 'var_keyword'}]

    def sig(text):
        namespace = {}
        exec('def f(self, %s): pass' % text, namespace)
        return parameters(namespace['f'])
    assert incompatibilities(ref, sig('volume, connector, **kw')) == []
    assert incompatibilities(ref, sig('volume, connector, x=1, *, y=2, **k')
                             ) == []
    assert incompatibilities(ref, sig('connector, volume, **kw'))
    assert incompatibilities(ref, sig('volume, connector'))
    assert incompatibilities(ref, sig('volume, connector, extra, **kw'))
    assert incompatibilities(ref, sig('volume, connector=None, **kw'))
    assert incompatibilities(ref, sig('volume, connector, *, must, **kw'))


# -- classes, bases, members --------------------------------------------------

def reference_classes():
    """Stand-ins built from the reference, so Python computes its MRO."""
    built = {'object': object}
    for cls in sorted(CONTRACT['classes'],
                      key=lambda c: c['name'] != 'BaseVD'):
        pending = [cls]
        while pending:
            current = pending[-1]
            missing = [CLASSES[b] for b in current['bases'] if b not in built]
            if missing:
                pending.extend(missing)
                continue
            pending.pop()
            if current['name'] not in built:
                built[current['name']] = type(
                    current['name'],
                    tuple(built[b] for b in current['bases']),
                    {m['name']: m for m in current['members']})
    return built


REFERENCE_CLASSES = reference_classes()


@pytest.mark.parametrize('name', sorted(CLASSES))
def test_class_has_the_reference_bases_and_mro(name):
    cls = getattr(base, name)
    assert [b.__name__ for b in cls.__bases__] == CLASSES[name]['bases']
    assert [c.__name__ for c in cls.__mro__] == [
        c.__name__ for c in REFERENCE_CLASSES[name].__mro__]


@pytest.mark.parametrize('name', sorted(n for n in CLASSES
                                        if CLASSES[n]['signature']))
def test_constructor_signature(name):
    cls = getattr(base, name)
    assert incompatibilities(CLASSES[name]['signature'],
                             parameters(cls.__init__)) == []


@pytest.mark.parametrize(
    'owner, member', MEMBERS,
    ids=['%s.%s' % (owner, member['name']) for owner, member in MEMBERS])
def test_member_defined_as_the_reference_lists_it(owner, member):
    cls = getattr(base, owner)
    name = member['name']
    assert name in vars(cls), '%s does not define %s itself' % (owner, name)
    attr = vars(cls)[name]
    kind = member['kind']
    if kind == 'attribute':
        assert attr == ast.literal_eval(member['value'])
    elif kind == 'property':
        assert isinstance(attr, property)
    elif kind == 'staticmethod':
        assert isinstance(attr, staticmethod)
        assert incompatibilities(member['parameters'],
                                 parameters(attr.__func__, bound=False)) == []
    else:
        assert inspect.isfunction(attr), '%s.%s is %r' % (owner, name, attr)
        assert incompatibilities(member['parameters'], parameters(attr)) == []


@pytest.mark.parametrize('name', sorted(CLASSES))
def test_every_reference_name_resolves_as_in_the_reference(name):
    cls, ref = getattr(base, name), REFERENCE_CLASSES[name]
    names = {m['name'] for c in ref.__mro__[:-1] for m in
             CLASSES[c.__name__]['members']}
    for attr in sorted(names):
        expected = next(c for c in ref.__mro__ if attr in vars(c))
        actual = next(c for c in cls.__mro__ if attr in vars(c))
        assert actual.__name__ == expected.__name__, attr


# -- documented return conventions, on the fake driver ------------------------

REPLICATION_STATUSES = {'error', 'copying', 'active', 'active-stopped',
                        'inactive'}


class Lookup:
    def __init__(self, *objects):
        self.objects = {obj.id: obj for obj in objects}

    def volume_get(self, context, volume_id):
        return self.objects[volume_id]

    snapshot_get = volume_get


@pytest.fixture
def driver():
    conf = cfg.ConfigOpts()
    driver = fake.FakeDriver(configuration=configuration.Configuration(
        config_group='fake1', conf=conf), host='node@fake1')
    conf.set_override('replication_device', [{'backend_id': 'west'}],
                      group='fake1')
    return driver


def volume(driver=None, size=1):
    vol_id = str(uuid.uuid4())
    vol = types.SimpleNamespace(
        id=vol_id, size=size, name='volume-' + vol_id, host='node@fake1#pool1',
        provider_location=None, provider_auth=None, status='available')
    if driver is not None:
        driver.create_volume(vol)
    return vol


def snapshot(driver, vol):
    snap_id = str(uuid.uuid4())
    snap = types.SimpleNamespace(id=snap_id, volume_id=vol.id,
                                 volume_size=vol.size,
                                 name='snapshot-' + snap_id)
    driver.create_snapshot(snap)
    return snap


def is_model_update(value):
    return value is None or isinstance(value, dict)


def is_entry_list(value, key='id'):
    return value is None or all(
        isinstance(entry, dict) and key in entry and 'status' in entry
        for entry in value)


class TestFakeDriverReturnConventions:
    def test_volume_and_export_calls_return_model_updates(self, driver):
        vol = volume()
        assert is_model_update(driver.create_volume(vol))
        update = driver.create_export(None, vol, {'initiator': 'iqn.x'})
        assert is_model_update(update) and update['provider_location']
        snap = snapshot(driver, vol)
        assert is_model_update(
            driver.create_export_snapshot(None, snap, {'initiator': 'i'}))

    def test_connection_info(self, driver):
        vol = volume(driver)
        vars(vol).update(driver.create_export(None, vol, {}))
        info = driver.initialize_connection(vol, {'initiator': 'iqn.x'})
        assert info['driver_volume_type'] == 'iscsi'
        assert {'target_discovered', 'target_iqn', 'target_portal',
                'volume_id', 'discard'} <= set(info['data'])
        snap = snapshot(driver, vol)
        driver.create_export_snapshot(None, snap, {})
        info = driver.initialize_connection_snapshot(snap, {'initiator': 'i'})
        assert set(info) >= {'driver_volume_type', 'data'}
        updates = info.get('initiator_updates', {})
        assert set(updates) <= {'set_values', 'remove_values'}

    def test_stats_capabilities_and_scheduler_strings(self, driver):
        stats = driver.get_volume_stats(refresh=True)
        assert {'volume_backend_name', 'vendor_name', 'driver_version',
                'storage_protocol', 'total_capacity_gb', 'free_capacity_gb',
                'reserved_percentage', 'pools'} <= set(stats)
        assert driver.get_pool(volume(driver)) == 'pool1'
        assert driver.get_version() == fake.FakeDriver.VERSION
        for value in (driver.get_filter_function(),
                      driver.get_goodness_function()):
            assert value is None or isinstance(value, str)
        assert driver.get_default_filter_function() is None
        assert driver.get_default_goodness_function() is None
        caps = driver.init_capabilities()
        assert caps['total_capacity_gb'] == stats['total_capacity_gb']
        assert isinstance(caps['properties'], dict)
        assert 'vendor_prefix' not in caps     # no vendor properties
        assert driver.get_prefixed_property('x') is None
        assert isinstance(driver.initialized, bool)
        assert driver.supported is True

    def test_groups(self, driver):
        group = types.SimpleNamespace(id='g1')
        vols = [volume(driver), volume(driver)]
        assert is_model_update(driver.create_group(None, group))
        model, adds, removes = driver.update_group(None, group, vols[:1],
                                                   vols[1:])
        assert is_model_update(model)
        assert adds is None or all('id' in entry for entry in adds)
        assert removes is None or all('id' in entry for entry in removes)
        snaps = [types.SimpleNamespace(id=str(uuid.uuid4()), volume_id=v.id,
                                       volume_size=1, name='s') for v in vols]
        model, updates = driver.create_group_snapshot(None, group, snaps)
        assert is_model_update(model) and is_entry_list(updates)
        clones = [volume(), volume()]
        model, updates = driver.create_group_from_src(
            None, types.SimpleNamespace(id='g2'), clones,
            types.SimpleNamespace(id='gs'), snaps)
        assert is_model_update(model) and is_entry_list(updates)
        model, updates = driver.delete_group_snapshot(None, group, snaps)
        assert is_model_update(model) and is_entry_list(updates)
        model, updates = driver.delete_group(None, group, vols + clones)
        assert is_model_update(model) and is_entry_list(updates)

    def test_consistency_groups(self, driver):
        group = types.SimpleNamespace(id='cg1')
        vol = volume(driver)
        assert is_model_update(driver.create_consistencygroup(None, group))
        assert len(driver.update_consistencygroup(None, group, [vol])) == 3
        snaps = [types.SimpleNamespace(id='cs', volume_id=vol.id,
                                       volume_size=1, name='s')]
        model, updates = driver.create_cgsnapshot(None, group, snaps)
        assert is_model_update(model) and is_entry_list(updates)
        model, updates = driver.create_consistencygroup_from_src(
            None, types.SimpleNamespace(id='cg2'), [volume()], group, snaps)
        assert is_model_update(model) and is_entry_list(updates)
        model, updates = driver.delete_cgsnapshot(None, group, snaps)
        assert is_model_update(model) and is_entry_list(updates)
        model, updates = driver.delete_consistencygroup(None, group, [vol])
        assert is_model_update(model) and is_entry_list(updates)

    def test_replication(self, driver):
        vol = volume(driver)
        result = driver.failover_host(None, [vol], None)
        assert len(result) in (2, 3)
        assert result[0] == 'west'
        assert all(set(entry) == {'volume_id', 'updates'}
                   for entry in result[1])
        for call in (driver.get_replication_status, driver.promote_replica,
                     driver.reenable_replication):
            update = call(None, vol)
            assert update['replication_status'] in REPLICATION_STATUSES
            assert {'replication_extended_status',
                    'replication_driver_data'} <= set(update)
        assert driver.freeze_backend(None) in (True, False)
        assert driver.thaw_backend(None) in (True, False)
        assert driver.get_replication_updates(None) == []

    def test_manageable_objects(self, driver):
        driver.add_unmanaged_volume('old', 3)
        driver.add_unmanaged_snapshot('old-snap', 3, 'old')
        entries = driver.get_manageable_volumes([], None, None, 0, None, None)
        keys = {'reference', 'size', 'safe_to_manage', 'reason_not_safe',
                'cinder_id', 'extra_info'}
        assert entries and all(keys <= set(e) for e in entries)
        assert all(isinstance(e['size'], int) for e in entries)
        snaps = driver.get_manageable_snapshots([], None, None, 0, None, None)
        assert snaps and all(keys | {'source_reference'} <= set(e)
                             for e in snaps)
        vol = volume()
        assert driver.manage_existing_get_size(
            vol, {'source-name': 'old'}) == 3
        assert is_model_update(driver.manage_existing(
            vol, {'source-name': 'old'}))
        snap = types.SimpleNamespace(id='s1', volume_id=vol.id, name='s')
        assert driver.manage_existing_snapshot_get_size(
            snap, {'source-name': 'old-snap'}) == 3

    def test_migration_provider_info_images_backups(self, driver):
        vol = volume(driver)
        moved, update = driver.migrate_volume(None, vol, {'host': 'h',
                                                          'capabilities': {}})
        assert isinstance(moved, bool) and is_model_update(update)
        new = volume(driver)
        update = driver.update_migrated_volume(None, vol, new, 'available')
        assert update is None or set(update) <= {'_name_id',
                                                 'provider_location'}
        assert len(driver.update_provider_info([vol], [])) == 2
        update, cloned = driver.clone_image(vol, 'loc', 'image', {}, None)
        assert is_model_update(update) and isinstance(cloned, bool)
        driver.db = Lookup(vol)
        device, is_snapshot = driver.get_backup_device(
            None, types.SimpleNamespace(id='b', volume_id=vol.id,
                                        snapshot_id=None))
        assert device is vol and is_snapshot is False
        for flag in (driver.secure_file_operations_enabled(),
                     driver.backup_use_temp_snapshot(),
                     driver.snapshot_remote_attachable()):
            assert isinstance(flag, bool)

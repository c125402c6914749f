"""Configuration: the sample is current, defaults are the documented ones."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
GENERATOR_CONF = os.path.join(ROOT, 'etc', 'volume-worker',
                              'volume-worker-config-generator.conf')
SAMPLE = os.path.join(ROOT, 'etc', 'volume-worker', 'volume-worker.conf.sample')


def test_sample_config_is_up_to_date(tmp_path):
    out = tmp_path / 'sample.conf'
    generator = os.path.join(os.path.dirname(sys.executable),
                             'oslo-config-generator')
    subprocess.run([generator, '--config-file', GENERATOR_CONF,
                    '--output-file', str(out)], check=True, cwd=ROOT,
                   capture_output=True)
    with open(SAMPLE) as f:
        committed = f.read()
    assert out.read_text() == committed, (
        'etc/volume-worker/volume-worker.conf.sample is out of date: run '
        'oslo-config-generator --config-file %s' % GENERATOR_CONF)


def test_sample_documents_our_defaults():
    with open(SAMPLE) as f:
        text = f.read()
    assert '#transport_url = rabbit://guest:guest@127.0.0.1:5672/' in text
    assert '#connection = sqlite:///$state_path/volume-worker.sqlite' in text
    assert '#volume_driver = drivers.fake.FakeDriver' in text
    assert '#fake_fault_delay' in text and '#file_volume_dir' in text


def test_every_option_has_help():
    from volume_worker import opts
    for group, options in opts.list_opts():
        for opt in options:
            assert opt.help, '%s.%s has no help text' % (group, opt.name)


def test_early_option_reads_executor(tmp_path):
    from volume_worker import config
    conf = tmp_path / 'a.conf'
    conf.write_text('[DEFAULT]\nexecutor = threading\n')
    assert config.early_option(['--config-file', str(conf)], 'executor',
                               'eventlet') == 'threading'
    assert config.early_option([], 'executor', 'eventlet') == 'eventlet'


def test_a_driver_path_that_does_not_import_is_one_clear_error():
    import pytest
    from oslo_config import cfg

    from volume_worker import exception
    from volume_worker import opts
    from volume_worker import service
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    opts.register_backend_opts(conf, 'b1')
    for path, reason in (('no_such_package.Driver', 'no_such_package'),
                         ('drivers.fake.NoSuchDriver', 'NoSuchDriver'),
                         ('NotAPath', 'NotAPath')):
        conf.set_override('volume_driver', path, group='b1')
        with pytest.raises(exception.DriverNotFound) as err:
            service.load_driver(conf, 'b1', 'h@b1')
        assert str(err.value).startswith(
            '[b1] volume_driver = %s cannot be loaded: ' % path)
        assert reason in str(err.value)

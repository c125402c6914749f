"""Guru Meditation reports (oslo.reports) on SIGUSR2: what the worker is doing, right now.

``kill -USR2 <pid>`` writes a report: package and version, every native
thread's and green thread's stack, processes, the configuration (secret
options masked), and the operations in flight with their age. It goes to a
file ``volume-worker_gurumeditation_<time>`` in ``[oslo_reports] log_dir``,
or to stderr (the log of a systemd unit) when that is unset.
"""

import time

from oslo_reports import guru_meditation_report as gmr
from oslo_reports.models import with_default_views as models
from oslo_reports import opts as gmr_opts

from volume_worker import metrics

SERVICE_NAME = 'volume-worker'


class Version:
    """What the report's Package section says."""

    @staticmethod
    def vendor_string():
        return 'volume-worker'

    @staticmethod
    def product_string():
        return 'volume-worker'

    @staticmethod
    def version_string_with_package():
        from importlib import metadata
        try:
            return metadata.version('volume-worker')
        except metadata.PackageNotFoundError:
            return 'unknown (not installed as a package)'


def in_flight_text(model):
    rows = model['operations']
    if not rows:
        return 'none'
    lines = ['%-36s  %-30s  %-10s  %-36s  %s' % (
        'operation id', 'family', 'resource', 'resource id', 'running for')]
    for row in rows:
        lines.append('%-36s  %-30s  %-10s  %-36s  %.1fs  (%s)' % (
            row['id'], row['family'], row['type'], row['resource_id'],
            row['seconds'], row['backend']))
    return '\n'.join(lines)


def in_flight_section():
    now = time.time()
    rows = [{'id': str(op_id), 'backend': backend, 'family': family,
             'type': rtype, 'resource_id': resource_id,
             'seconds': now - started}
            for op_id, (backend, family, rtype, resource_id, started)
            in sorted(dict(metrics.in_flight).items(),
                      key=lambda item: item[1][4])]
    return models.ModelWithDefaultViews({'operations': rows},
                                        text_view=in_flight_text)


def setup(conf):
    """Write a report on SIGUSR2 (or on ``[oslo_reports] file_event_handler``)."""
    gmr_opts.set_defaults(conf)  # registers [oslo_reports]
    gmr.TextGuruMeditation.register_section('In-flight operations',
                                            in_flight_section)
    gmr.TextGuruMeditation.setup_autorun(Version, service_name=SERVICE_NAME,
                                         conf=conf)

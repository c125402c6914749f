"""The volume-worker benchmark (issue 7, and issue 9's journal cost).

Measures, in one run and side by side: the raw oslo.messaging limit, the
control path through a real worker, driver-call concurrency, start-up and
reports at scale, the file driver's data path, worker memory, and the flow
journal's own cost; with ``--peer cinder``, a real cinder-volume 29 beside
ours (issue 20). Prints a table; ``--json`` / ``--markdown`` save it.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
warnings.filterwarnings('ignore', category=DeprecationWarning)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, ROOT]

import common  # noqa: E402
import peer  # noqa: E402  (imports nothing of the project or of Cinder)

PROFILE_SECTION = '9 worker profile (py-spy, create+delete burst)'

# Counts per mode: volumes per control-path phase, raw calls and casts,
# volumes in the database for the scale section, data-path sizes.
SIZES = {
    'smoke': dict(control=10, calls=100, concurrent_calls=320, casts=300,
                  scale_small=10, scale_large=200, exports=20, volume_gb=1,
                  data_mib=32, journal=10, caps_repeat=5, rounds=1,
                  peer=20, peer_lone=5, peer_rounds=1, peer_warm=10,
                  group_members=4, cluster=30),
    'quick': dict(control=50, calls=300, concurrent_calls=960, casts=1000,
                  scale_small=100, scale_large=10000, exports=1000,
                  volume_gb=2, data_mib=128, journal=30, caps_repeat=10,
                  rounds=1, peer=100, peer_lone=20, peer_rounds=1,
                  peer_warm=20, group_members=12, cluster=300),
    'full': dict(control=1000, calls=2000, concurrent_calls=6400,
                 casts=10000, scale_small=100, scale_large=10000,
                 scale_huge=100000,
                 exports=10000, volume_gb=10, data_mib=1024, journal=300,
                 caps_repeat=30, rounds=2, peer=300, peer_lone=50,
                 peer_rounds=3, peer_warm=50, group_members=20,
                 cluster=1000),
}

ALL_SECTIONS = ('raw', 'control', 'concurrency', 'scale', 'exports',
                'datapath', 'backup', 'images', 'groups', 'journal',
                'cluster')


def machine():
    info = {'python': platform.python_version(), 'kernel': platform.release(),
            'cpus': os.cpu_count()}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu'] = line.split(':', 1)[1].strip()
                    break
        with open('/proc/meminfo') as f:
            info['memory_gib'] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        out = subprocess.run(['dpkg-query', '-W', '-f=${Version}',
                              'rabbitmq-server'], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if out:
            info['rabbitmq'] = out
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(['git', 'status', '--porcelain', '--',
                                'volume_worker', 'drivers'], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
        if rev.returncode == 0:
            info['commit'] = rev.stdout.strip() + (
                ' (+ uncommitted changes in volume_worker/drivers)'
                if dirty.stdout.strip() else '')
    except (OSError, subprocess.SubprocessError):
        pass
    return info


class Bench:
    def __init__(self, args):
        self.args = args
        self.size = SIZES[args.size]
        self.results = common.Results()
        self.state = tempfile.mkdtemp(prefix='vw-bench-')
        self.workers = []
        self.collector = None
        self.conf = None
        self.failed = []

    # -- workers ------------------------------------------------------------

    def new_worker(self, name, executor, backends=None):
        from volume_worker.testing import process
        path, settings = process.write_config(
            os.path.join(self.state, name), executor=executor,
            backends=backends)
        worker = process.WorkerProcess(path)
        self.workers.append(worker)
        return worker, path, settings

    def control_backends(self):
        fake = 'drivers.fake.FakeDriver'
        return {'fake1': {'volume_driver': fake,
                          'volume_backend_name': 'fake1'},
                'slow1': {'volume_driver': fake,
                          'volume_backend_name': 'slow1',
                          'fake_fault_delay': 'create_volume:1'}}

    # -- run ----------------------------------------------------------------

    def run(self):
        from volume_worker.testing import process
        sections = self.args.sections
        executors = self.args.executors
        started = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            workers = {}
            for executor in executors:
                if {'control', 'concurrency'} & set(sections):
                    workers[executor] = self.new_worker(
                        'worker-' + executor, executor,
                        self.control_backends())
            # oslo.messaging needs the global CONF: parse one worker's config
            # (all share the broker and volume_topic; servers differ by host).
            first_path = (next(iter(workers.values()))[1] if workers else
                          self.new_worker('client', 'eventlet')[1])
            self.conf = process.client_config(first_path)
            for worker, _, _ in workers.values():
                worker.start(wait_ready=False)
            for worker, _, _ in workers.values():
                worker.wait_for_log('volume-worker started on', 90)
            if workers:
                self.collector = common.EventCollector(
                    self.conf.transport_url).start()

            self.section('raw', self.raw, first_path)
            for executor, (worker, _, settings) in workers.items():
                self.section('control', self.control, worker, settings,
                             executor)
            for executor, (worker, _, settings) in workers.items():
                self.section('concurrency', self.concurrency, worker,
                             settings, executor)
            for worker, _, _ in workers.values():
                worker.stop()
            self.section('scale', self.scale)
            self.section('exports', self.exports)
            self.section('datapath', self.datapath)
            self.section('backup', self.backup)
            self.section('images', self.images)
            self.section('groups', self.groups)
            self.section('journal', self.journal)
            self.section('cluster', self.cluster)
            if self.args.peer:
                self.section('peer', self.peer, enabled=True)
        finally:
            self.cleanup()
        self.results.note(
            'Mode %s; %d CPU(s) shared by the bench client, RabbitMQ and the '
            'worker; whole run %.0f s; load average %.2f before, %.2f after '
            '(other jobs on the machine add noise).' % (
                self.args.size, os.cpu_count(), time.monotonic() - started,
                load_before, os.getloadavg()[0]))
        return self.results

    def section(self, name, fn, *args, enabled=None):
        if not (name in self.args.sections if enabled is None else enabled):
            return
        try:
            fn(*args)
        except Exception as exc:
            traceback.print_exc()
            self.failed.append(name)
            self.results.skip(name, 'FAILED: %s: %s' % (
                type(exc).__name__, str(exc).splitlines()[0][:200]))

    def raw(self, conf_path):
        import raw_rpc
        s = self.size
        raw_rpc.measure(self.conf, conf_path, self.state, self.results,
                        s['calls'], s['concurrent_calls'], s['casts'])

    def control(self, worker, settings, executor):
        import control
        backend = settings['backends'][0]
        profile = None
        if self.args.profile and executor == self.args.executors[0]:
            profile = os.path.join(self.state, 'worker-%s.pyspy.raw'
                                   % executor)
        tag = ' [%s]' % executor
        control.measure_control(self.conf, self.collector, worker, backend,
                                self.results, self.size['control'],
                                profile_path=profile, tag=tag)
        if profile and os.path.exists(profile):
            shares, samples = common.spy_breakdown(profile)
            for name, share in shares.items():
                self.results.add(PROFILE_SECTION, name, share * 100,
                                 '% samples')
            self.results.add(PROFILE_SECTION, 'samples', samples, '')
            top = common.spy_top_frames(profile, 15)
            self.results.note('py-spy top frames (self, innermost '
                              'non-stdlib) in the worker:\n' + '\n'.join(
                                  '    %5.1f%%  %s' % (share * 100, frame)
                                  for frame, share in top))
            if self.args.keep_profile:
                shutil.copy(profile, self.args.keep_profile)

    def concurrency(self, worker, settings, executor):
        import control
        slow = [b for b in settings['backends'] if b.endswith('@slow1')][0]
        control.measure_concurrency(self.conf, self.collector, worker, slow,
                                    self.results, executor)

    def cluster(self):
        import cluster
        import raw_rpc
        cluster.measure_fence(self.state, self.results)
        cluster.measure(self.state, self.results, self.size['cluster'],
                        self.results.get(raw_rpc.SECTION,
                                         'cast consumed rate'))

    def scale(self):
        import scale

        def factory():
            worker, path, settings = self.new_worker('scale', 'eventlet')
            return (worker, os.path.join(os.path.dirname(path),
                                         'volume-worker.sqlite'),
                    settings['backends'][0])
        s = self.size
        scale.measure(self.conf, factory, self.results, s['scale_small'],
                      s['scale_large'], s['caps_repeat'],
                      huge=s.get('scale_huge'))

    def exports(self):
        import exports
        exports.measure(self, self.results, self.size['exports'])

    def datapath(self):
        import datapath
        s = self.size
        datapath.measure(self.results, s['volume_gb'],
                         s['data_mib'] * datapath.MiB, s['rounds'])

    def backup(self):
        import backup
        s = self.size
        backup.measure(self.results, 1, min(s['data_mib'], 1024) * backup.MiB,
                       max(s['rounds'], 5))

    def images(self):
        import images
        s = self.size
        images.measure(self.results, s['data_mib'] * images.MiB, s['rounds'],
                       clone_gb=s['volume_gb'])

    def groups(self):
        import groups
        groups.measure(self, self.results, self.size['group_members'],
                       max(self.size['rounds'], 2))

    def journal(self):
        import journal
        journal.measure(self.state, self.results, self.size['journal'])

    def peer(self):
        s = self.size
        peer.measure(self, self.results, s['peer'], s['peer_lone'],
                     s['peer_rounds'], s['peer_warm'])

    def cleanup(self):
        for worker in self.workers:
            try:
                worker.stop()
            except Exception:
                traceback.print_exc()
                worker.kill()
        if self.collector is not None:
            self.collector.close()
        if self.args.keep:
            print('state kept in %s' % self.state, file=sys.stderr)
        else:
            shutil.rmtree(self.state, ignore_errors=True)


def markdown(results, info, args):
    date = datetime.date.today().isoformat()
    lines = ['# volume-worker benchmark, %s' % date, '',
             'Machine: %s' % ', '.join('%s %s' % kv for kv in info.items()),
             '', 'Command: `tools/bench/run %s`' % ' '.join(args.argv), '',
             common.render_table(results, markdown=True), '', '## Notes', '']
    for note in results.notes:
        if '\n' in note:
            head, _, rest = note.partition('\n')
            lines += ['- ' + head, '', '```', rest, '```', '']
        else:
            lines.append('- ' + note)
    return '\n'.join(lines) + '\n'


def parse(argv):
    p = argparse.ArgumentParser(prog='tools/bench/run', description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument('--quick', dest='size', action='store_const',
                      const='quick', help='small counts, under a minute')
    size.add_argument('--smoke', dest='size', action='store_const',
                      const='smoke', help='tiny counts (the functional test)')
    p.set_defaults(size='full')
    p.add_argument('--json', metavar='FILE', help='write results as JSON')
    p.add_argument('--markdown', metavar='FILE',
                   help='write a results file (Markdown table and notes)')
    p.add_argument('--sections', default=','.join(ALL_SECTIONS),
                   help='comma-separated subset of: %s' % ', '.join(
                       ALL_SECTIONS))
    p.add_argument('--executors', default='eventlet,threading',
                   help='worker executors for the control and concurrency '
                        'sections (default: eventlet,threading)')
    p.add_argument('--profile', action='store_true',
                   help='py-spy the worker during the create/delete burst')
    p.add_argument('--keep-profile', metavar='FILE',
                   help='with --profile, keep the raw py-spy stacks here')
    p.add_argument('--keep', action='store_true',
                   help='keep the temporary state directory (logs, DBs)')
    p.add_argument('--peer', choices=('cinder',),
                   help='also run a real cinder-volume %s beside ours on the '
                        'same broker (installs it with pip into a venv of '
                        'its own, about half a minute) and report the '
                        'ratios; results are saved under '
                        'tools/bench/results/ unless --json/--markdown say '
                        'where' % peer.CINDER_VERSION)
    p.add_argument('--peer-venv', metavar='DIR',
                   help='with --peer, the venv to install Cinder into (or '
                        'reuse); default: a new one in the scratch '
                        'directory, removed after the run')
    args = p.parse_args(argv)
    args.argv = list(argv)
    args.sections = [s.strip() for s in args.sections.split(',') if s.strip()]
    unknown = set(args.sections) - set(ALL_SECTIONS)
    if unknown:
        p.error('unknown sections: %s' % ', '.join(sorted(unknown)))
    args.executors = [e.strip() for e in args.executors.split(',')
                      if e.strip()]
    if args.peer_venv and not args.peer:
        p.error('--peer-venv needs --peer')
    if args.peer:
        if 'raw' not in args.sections:
            args.sections.insert(0, 'raw')  # the peer ratios need the limit
        date = datetime.date.today().isoformat()
        base = os.path.join(HERE, 'results', 'peer-%s-%s' % (args.peer, date))
        args.json = args.json or base + '.json'
        args.markdown = args.markdown or base + '.md'
    return args


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    info = machine()
    bench = Bench(args)
    results = bench.run()
    print(common.render_table(results))
    for note in results.notes:
        print('note: ' + note)
    out = dict(results.as_dict(), machine=info, mode=args.size,
               date=datetime.date.today().isoformat(), failed=bench.failed)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1, default=str)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(markdown(results, info, args))
    return 1 if bench.failed else 0


if __name__ == '__main__':
    sys.exit(main())

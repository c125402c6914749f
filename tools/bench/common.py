"""Shared bench plumbing: statistics, /proc readings, a results table, completion events."""

import os
import threading
import time

CLK_TCK = os.sysconf('SC_CLK_TCK')


def percentile(values, pct):
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1,
                      int(round(pct / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError('no VmRSS for pid %d' % pid)


class Results:
    """Rows of (section, metric, value, unit, target, met) in run order."""

    def __init__(self):
        self.rows = []
        self.notes = []
        self.skipped = {}

    def add(self, section, metric, value, unit='', target=None, met=None):
        self.rows.append({'section': section, 'metric': metric,
                          'value': value, 'unit': unit, 'target': target,
                          'met': met})
        return value

    def skip(self, section, reason):
        self.skipped[section] = reason

    def note(self, text):
        self.notes.append(text)

    def get(self, section, metric):
        for row in self.rows:
            if row['section'] == section and row['metric'] == metric:
                return row['value']
        return None

    def sections(self):
        seen = []
        for row in self.rows:
            if row['section'] not in seen:
                seen.append(row['section'])
        for name in self.skipped:
            if name not in seen:
                seen.append(name)
        return seen

    def as_dict(self):
        return {'rows': self.rows, 'skipped': self.skipped,
                'notes': self.notes}


def fmt(value):
    if value is None:
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, float):
        if value == 0:
            return '0'
        if abs(value) >= 100:
            return '%.0f' % value
        if abs(value) >= 10:
            return '%.1f' % value
        if abs(value) >= 0.1:
            return '%.2f' % value
        return '%.3g' % value
    return str(value)


def render_table(results, markdown=False):
    """The results as text: a fixed-width table, or a Markdown one."""
    header = ('section', 'metric', 'value', 'unit', 'target', 'met')
    lines = []
    body = []
    for section in results.sections():
        for row in results.rows:
            if row['section'] != section:
                continue
            met = row['met']
            body.append((section, row['metric'], fmt(row['value']),
                         row['unit'], row['target'] or '',
                         '' if met is None else ('MET' if met else 'MISSED')))
        if section in results.skipped:
            body.append((section, 'SKIPPED', '-', '', '',
                         results.skipped[section]))
    if markdown:
        lines.append('| ' + ' | '.join(header) + ' |')
        lines.append('|' + '---|' * len(header))
        for cells in body:
            lines.append('| ' + ' | '.join(cells) + ' |')
        return '\n'.join(lines)
    widths = [max(len(h), *(len(c[i]) for c in body)) if body else len(h)
              for i, h in enumerate(header)]
    widths[-1] = len(header[-1])
    line = '  '.join(h.ljust(w) for h, w in zip(header, widths))
    lines.append(line)
    lines.append('-' * len(line))
    previous = None
    for cells in body:
        if previous is not None and cells[0] != previous:
            lines.append('')
        previous = cells[0]
        lines.append('  '.join(c.ljust(w) for c, w in
                               zip(cells, widths)).rstrip())
    return '\n'.join(lines)


class EventCollector:
    """Timestamps every volume notification as it arrives, and wakes waiters.

    One background thread owns the kombu connection of an ``EventStream``;
    senders call ``expect`` before sending and ``wait`` afterwards.
    """

    def __init__(self, transport_url, scheduler_topic='volume-scheduler'):
        from volume_worker import events
        self.stream = events.EventStream(transport_url,
                                         scheduler_topic=scheduler_topic)
        self._lock = threading.Lock()
        self._seen = {}      # (event_type, volume_id) -> monotonic time
        self._waiters = {}   # (event_type, volume_id) -> threading.Event
        self._stop = False
        self._thread = None
        self.errors = []

    def start(self):
        self.stream.start()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='bench-events')
        self._thread.start()
        return self

    def _run(self):
        while not self._stop:
            for event in self.stream.poll(0.2):
                now = time.monotonic()
                if event.get('kind') != 'notification':
                    continue
                volume_id = (event.get('payload') or {}).get('volume_id')
                kind = event['event_type']
                if kind.endswith('.error'):
                    self.errors.append((kind, volume_id))
                key = (kind, volume_id)
                with self._lock:
                    self._seen.setdefault(key, now)
                    waiter = self._waiters.get(key)
                if waiter is not None:
                    waiter.set()

    def expect(self, event_type, volume_id):
        with self._lock:
            return self._waiters.setdefault((event_type, volume_id),
                                            threading.Event())

    def wait(self, event_type, volume_id, timeout=60):
        """Monotonic time the event arrived; raises TimeoutError."""
        key = (event_type, volume_id)
        waiter = self.expect(event_type, volume_id)
        if not waiter.wait(timeout):
            raise TimeoutError('no %s for volume %s within %ss (errors: %s)'
                               % (event_type, volume_id, timeout,
                                  self.errors[-3:]))
        with self._lock:
            self._waiters.pop(key, None)
            return self._seen.pop(key)

    def close(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(2)
        self.stream.close()


# Who owns a frame, by the path of its file (first match wins).
COMPONENTS = (
    ('taskflow', ('/taskflow/', '/automaton/', '/networkx/', '/tenacity/',
                  '/fasteners/', '/futurist/')),
    ('sqlalchemy', ('/sqlalchemy/', 'sqlite3', '/alembic/')),
    ('oslo.messaging', ('/oslo_messaging/', '/kombu/', '/amqp/', '/vine/')),
    ('oslo.versionedobjects', ('/oslo_versionedobjects/',)),
    ('oslo.log/config/context/utils', ('/oslo_log/', '/oslo_config/',
                                       '/oslo_context/', '/oslo_utils/',
                                       '/oslo_serialization/', '/debtcollector/')),
    ('tooz (locks)', ('/tooz/',)),
    ('eventlet', ('/eventlet/', '/greenlet/')),
    ('ours (volume_worker, drivers)', ('/volume_worker/', '/drivers/')),
)


def component(filename):
    # py-spy names frames "func (eventlet/patcher.py:39)": paths relative to
    # site-packages; make every path start with a slash before matching.
    filename = filename.replace('(', '(/')
    for name, needles in COMPONENTS:
        if any(n in filename for n in needles):
            return name
    return None


def _spy_samples(raw_path):
    """(frames, sample count) for each stack of a py-spy ``--format raw`` file."""
    with open(raw_path) as f:
        for line in f:
            stack, _, n = line.rstrip('\n').rpartition(' ')
            if stack and n.isdigit():
                yield stack.split(';'), int(n)


def run_threads(target, count):
    """Run ``target`` in ``count`` threads at once; returns the wall time."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def spy_breakdown(raw_path):
    """{component: share of samples} from a py-spy ``--format raw`` file.

    A sample counts for the innermost frame that belongs to a known
    component; stdlib frames (json, logging, threading...) count for the
    component that called them.
    """
    totals = {}
    count = 0
    for frames, n in _spy_samples(raw_path):
        count += n
        owner = 'stdlib/other'
        for frame in reversed(frames):
            found = component(frame)
            if found:
                owner = found
                break
        totals[owner] = totals.get(owner, 0) + n
    return {k: v / count for k, v in sorted(totals.items(),
                                            key=lambda kv: -kv[1])}, count


def spy_top_frames(raw_path, limit=12):
    """The innermost non-stdlib frames with the most samples (self time)."""
    totals = {}
    count = 0
    for frames, n in _spy_samples(raw_path):
        count += n
        leaf = frames[-1]
        for frame in reversed(frames):
            if component(frame):
                leaf = frame
                break
        totals[leaf] = totals.get(leaf, 0) + n
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [(frame, n / count) for frame, n in top]


def cprofile_breakdown(profile):
    """{component: share of CPU} from a cProfile.Profile.

    Self time of stdlib and builtin functions is handed to their direct
    callers' components, in proportion to the time each caller spent there.
    """
    import pstats
    stats = pstats.Stats(profile).stats
    totals = {}
    grand = 0.0
    for func, (_cc, _nc, tt, _ct, callers) in stats.items():
        grand += tt
        owner = component(func[0]) or (
            'sqlalchemy' if 'sqlite3' in func[2] else None)
        if owner:
            totals[owner] = totals.get(owner, 0.0) + tt
            continue
        spread = sum(c[2] for c in callers.values()) or 0.0
        if not callers or spread <= 0:
            totals['stdlib/other'] = totals.get('stdlib/other', 0.0) + tt
            continue
        for caller, cstats in callers.items():
            share = tt * cstats[2] / spread
            who = component(caller[0]) or 'stdlib/other'
            totals[who] = totals.get(who, 0.0) + share
    return {k: v / grand for k, v in sorted(totals.items(),
                                            key=lambda kv: -kv[1])}

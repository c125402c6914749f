"""Drives a real cinder-volume for the benchmark's peer section.

Runs in Cinder's own venv (it imports Cinder, never volume-worker), as the
API tier would: each volume's row is written to Cinder's database first
(status ``creating``; ``deleting`` before a delete), then the casts go
through Cinder's own ``cinder.volume.rpcapi.VolumeAPI``. Completion is the
``volume.create.end`` / ``volume.delete.end`` notification cinder-volume
publishes, as seen by a notification listener here; worker CPU is read
from ``/proc/PID/stat`` of the process that serves the backend (the child
oslo.service forks).

    python peer_cinder.py --config-file cinder.conf --host HOST@fake
        --pid CHILD_PID --count N --lone M [--warm W]

Prints one JSON object: burst create and delete rates, worker CPU per
operation in each burst, and the latencies of ``--lone`` creates sent one
at a time (each waits for its end).
"""

import argparse
import json
import os
import sys
import threading
import time
import warnings

warnings.filterwarnings('ignore')

CLK_TCK = os.sysconf('SC_CLK_TCK')
ENDS = ('volume.create.end', 'volume.delete.end')


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class EndListener:
    """Notification endpoint: the arrival time of each volume's end event."""

    def __init__(self):
        self._cond = threading.Condition()
        self._seen = {}
        self.errors = []

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        if event_type in ENDS:
            with self._cond:
                self._seen.setdefault((event_type, payload.get('volume_id')),
                                      time.monotonic())
                self._cond.notify_all()

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self.errors.append((event_type, payload.get('volume_id')))

    def wait(self, event_type, volume_id, timeout=300):
        key = (event_type, volume_id)
        deadline = time.monotonic() + timeout
        with self._cond:
            while key not in self._seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('no %s for %s within %ss (errors: %s)'
                                       % (event_type, volume_id, timeout,
                                          self.errors[-3:]))
                self._cond.wait(min(left, 1.0))
            return self._seen.pop(key)


class Peer:
    def __init__(self, args):
        from oslo_config import cfg
        from cinder.common import config  # noqa: F401  (registers options)
        from cinder import context
        from cinder import objects
        from cinder import rpc
        objects.register_all()
        cfg.CONF(['--config-file', args.config_file], project='cinder')
        rpc.init(cfg.CONF)
        import oslo_messaging as messaging
        from cinder.volume import rpcapi
        from cinder.volume import volume_types

        self.objects = objects
        self.host = args.host
        self.ctxt = context.get_admin_context()
        self.ends = EndListener()
        # The topic the bench configured for this cinder-volume alone.
        topic = cfg.CONF.oslo_messaging_notifications.topics[0]
        self.listener = messaging.get_notification_listener(
            rpc.NOTIFICATION_TRANSPORT, [messaging.Target(topic=topic)],
            [self.ends])
        self.listener.start()
        self.api = rpcapi.VolumeAPI()
        self.volume_type_id = volume_types.get_default_volume_type(
            self.ctxt)['id']

    def close(self):
        self.listener.stop()
        self.listener.wait()

    def new_volumes(self, n):
        """Rows as cinder-api writes them before it casts a create."""
        volumes = []
        for i in range(n):
            volume = self.objects.Volume(
                context=self.ctxt, size=1, host=self.host + '#fake',
                status='creating', attach_status='detached',
                volume_type_id=self.volume_type_id, user_id='bench',
                project_id='bench', availability_zone='nova',
                display_name='bench-%d' % i)
            volume.create()
            volumes.append(volume)
        return volumes

    def mark_deleting(self, volumes):
        """What cinder-api does before it casts a delete."""
        for volume in volumes:
            volume.refresh()
            volume.status = 'deleting'
            volume.save()

    def create(self, volume):
        self.api.create_volume(self.ctxt, volume, None, None,
                               allow_reschedule=False)

    def delete(self, volume):
        self.api.delete_volume(self.ctxt, volume)

    def burst(self, op, volumes, event):
        """Cast all at once, then wait for every end; (rate, latencies)."""
        started = time.monotonic()
        sent = []
        for volume in volumes:
            sent.append((volume.id, time.monotonic()))
            op(volume)
        last = started
        latencies = []
        for volume_id, t0 in sent:
            done = self.ends.wait(event, volume_id)
            latencies.append(done - t0)
            last = max(last, done)
        return len(volumes) / (last - started), latencies

    def lone(self, volumes):
        latencies = []
        for volume in volumes:
            t0 = time.monotonic()
            self.create(volume)
            latencies.append(self.ends.wait('volume.create.end', volume.id)
                             - t0)
        return latencies


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config-file', required=True)
    p.add_argument('--host', required=True, help='HOST@BACKEND')
    p.add_argument('--pid', type=int, required=True,
                   help='the cinder-volume process serving the backend')
    p.add_argument('--count', type=int, required=True)
    p.add_argument('--lone', type=int, default=20)
    p.add_argument('--warm', type=int, default=0)
    args = p.parse_args(argv)

    peer = Peer(args)
    try:
        if args.warm:
            warm = peer.new_volumes(args.warm)
            peer.burst(peer.create, warm, 'volume.create.end')
            peer.mark_deleting(warm)
            peer.burst(peer.delete, warm, 'volume.delete.end')

        volumes = peer.new_volumes(args.count)
        cpu0 = cpu_seconds(args.pid)
        create_rate, create_lat = peer.burst(peer.create, volumes,
                                             'volume.create.end')
        cpu1 = cpu_seconds(args.pid)
        peer.mark_deleting(volumes)
        cpu2 = cpu_seconds(args.pid)
        delete_rate, delete_lat = peer.burst(peer.delete, volumes,
                                             'volume.delete.end')
        cpu3 = cpu_seconds(args.pid)

        lone = peer.new_volumes(args.lone)
        lone_lat = peer.lone(lone)
        peer.mark_deleting(lone)
        peer.burst(peer.delete, lone, 'volume.delete.end')
        out = {
            'create_rate': create_rate, 'delete_rate': delete_rate,
            'cpu_per_create': (cpu1 - cpu0) / args.count,
            'cpu_per_delete': (cpu3 - cpu2) / args.count,
            'create_burst_latencies': create_lat,
            'delete_burst_latencies': delete_lat,
            'lone_create_latencies': lone_lat,
            'errors': peer.ends.errors,
        }
    finally:
        peer.close()
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()

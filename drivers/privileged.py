"""What the bundled drivers do as root, behind oslo.privsep entrypoints.

One context, ``[privsep_tgt]``: requests on the control socket of a tgtd run
by root. tgtd serves only peers with its own uid and gid, so the daemon keeps
uid 0 and gid 0, and no capability at all (the socket belongs to root, whose
owner bits let it connect). The worker starts this daemon, and os-brick's,
before it drops to its unprivileged user (``volume_worker.privileges``).

A process that is root and starts no daemon (the quick start, tests run as
root) makes these calls itself: ``in_process()`` at import. A process that
is not root and has no daemon starts one through ``[privsep_tgt]
helper_command`` (default ``sudo privsep-helper ...``) on its first call.
"""

import os

from oslo_privsep import priv_context

from drivers import tgt_ipc

CONFIG_SECTION = 'privsep_tgt'

tgt = priv_context.PrivContext(
    __name__,
    cfg_section=CONFIG_SECTION,
    pypath=__name__ + '.tgt',
    capabilities=[],
)

CONTEXTS = (tgt,)


@tgt.entrypoint
def tgt_request(control_port, mode, op, **kwargs):
    """``tgt_ipc.request`` as root (see the module's docstring)."""
    return tgt_ipc.request(control_port, mode, op, **kwargs)


def request(control_port, mode, op, **kwargs):
    """``tgt_request``, with a daemon that cannot start said in one line."""
    from oslo_privsep import daemon
    try:
        return tgt_request(control_port, mode, op, **kwargs)
    except (OSError, daemon.FailedToDropPrivileges) as exc:
        # Raised only while the client starts its daemon: the request
        # itself turns its own OSErrors into TgtdError.
        raise tgt_ipc.TgtdError(
            'the privsep daemon of [%s] did not start (%s): run the worker '
            'as root (with [DEFAULT] user to drop to a plain user), or give '
            '[%s] helper_command a way to root' % (
                CONFIG_SECTION, exc, CONFIG_SECTION)) from None


def in_process():
    """Run every entrypoint of ``CONTEXTS`` in this (root) process."""
    for context in CONTEXTS:
        context.set_client_mode(False)


def daemon_pid(context):
    """The pid of ``context``'s daemon, or None when it runs in-process."""
    channel = getattr(context, 'channel', None)
    return getattr(channel, 'pid', None) if channel else None


if os.geteuid() == 0:
    in_process()

"""Start-up privileges (volume_worker.privileges) and tgtd's protocol client."""

import os
import socket
import struct
import threading
import types

import pytest

from drivers import tgt_ipc
from volume_worker import privileges


def conf(**values):
    defaults = {'user': None, 'group': None, 'state_path': '/nonexistent'}
    defaults.update(values)
    return types.SimpleNamespace(**defaults)


def test_secure_files_makes_a_private_state_path(tmp_path):
    old = os.umask(0o022)
    try:
        state = tmp_path / 'state'
        privileges.secure_files(conf(state_path=str(state)))
        assert os.stat(state).st_mode & 0o777 == 0o700
        (state / 'db').write_text('x')
        os.mkdir(state / 'locks')
        assert os.stat(state / 'db').st_mode & 0o777 == 0o600
        assert os.stat(state / 'locks').st_mode & 0o777 == 0o700
    finally:
        os.umask(old)


def test_a_config_file_readable_by_all_is_reported(tmp_path, caplog):
    secret = tmp_path / 'open.conf'
    secret.write_text('[DEFAULT]\n')
    os.chmod(secret, 0o644)
    private = tmp_path / 'private.conf'
    private.write_text('[DEFAULT]\n')
    os.chmod(private, 0o640)
    old = os.umask(0o022)
    try:
        privileges.secure_files(conf(state_path=str(tmp_path / 'state'),
                                     config_file=[str(secret), str(private)]))
    finally:
        os.umask(old)
    warned = [r.getMessage() for r in caplog.records
              if 'readable by every user' in r.getMessage()]
    assert warned == ['%s is readable by every user (mode 644) and may hold '
                      'secrets (transport_url, [key_manager] fixed_key): '
                      'chmod o-r it' % secret]


def test_no_user_keeps_the_identity():
    assert privileges.drop_to_user(conf(), start_daemons=pytest.fail) is None


@pytest.mark.parametrize('values, message', [
    ({'user': 'no-such-user-vw'}, "user 'no-such-user-vw': no such user"),
    ({'user': 'root', 'group': 'no-such-group-vw'},
     "group 'no-such-group-vw': no such group"),
    ({'group': 'root'}, 'group is set without user'),
])
def test_bad_identity_is_refused(values, message):
    with pytest.raises(privileges.PrivilegeError, match=message):
        privileges.drop_to_user(conf(**values), start_daemons=pytest.fail)


def test_a_state_path_of_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip('chown needs root')
    state = tmp_path / 'state'
    state.mkdir()
    os.chown(state, 12345, 12345)
    with pytest.raises(privileges.PrivilegeError, match='belongs to uid'):
        privileges._give_state_path(str(state), 999, 999)


def test_params_that_would_smuggle_another_are_refused():
    assert tgt_ipc.encode_params([('user', 'u'), ('password', 'p')]) == \
        b'user=u,password=p\0'
    for bad in ('a,b', 'a\0b', 'a\nb'):
        with pytest.raises(tgt_ipc.TgtdError, match='comma'):
            tgt_ipc.encode_params([('password', bad)])


def fake_tgtd(path, code, text=b''):
    """A one-request tgtd: records the request, answers ``code``/``text``."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    got = {}

    def serve():
        conn, _ = server.accept()
        with conn:
            header = conn.recv(tgt_ipc._REQUEST.size, socket.MSG_WAITALL)
            fields = tgt_ipc._REQUEST.unpack(header)
            got['fields'] = fields
            got['body'] = conn.recv(fields[3] - len(header),
                                    socket.MSG_WAITALL)
            conn.sendall(struct.pack('@II', code, 8 + len(text)) + text)
        server.close()
    thread = threading.Thread(target=serve)
    thread.start()
    return got, thread


def test_request_is_tgtadms_wire_format(tmp_path):
    path = str(tmp_path / 'socket.0')
    got, thread = fake_tgtd(path, 0, b'Account list:\n    u1\n\0')
    text = tgt_ipc.request(0, 'account', 'new', socket_path=path,
                           params=[('user', 'u1'), ('password', 'pw')])
    thread.join()
    assert text == 'Account list:\n    u1\n'
    mode, op, lld, length, tid, _sid, lun, *_rest, force = got['fields']
    assert (mode, op, lld.rstrip(b'\0'), tid, lun, force) == (
        7, 0, b'iscsi', -1, (1 << 64) - 1, 0)
    assert length == tgt_ipc._REQUEST.size + len(got['body'])
    assert got['body'] == b'user=u1,password=pw\0'


def test_refusal_keeps_its_code_and_names_it(tmp_path):
    path = str(tmp_path / 'socket.0')
    _got, thread = fake_tgtd(path, tgt_ipc.USER_EXISTS)
    with pytest.raises(tgt_ipc.TgtdError) as caught:
        tgt_ipc.request(0, 'account', 'new', socket_path=path,
                        params=[('user', 'u1'), ('password', 'pw')])
    thread.join()
    assert caught.value.code == tgt_ipc.USER_EXISTS
    assert str(caught.value) == 'tgtd refused to new account: account exists'
    # Rebuilt from its args, as a privsep daemon's client does.
    again = tgt_ipc.TgtdError(*caught.value.args)
    assert (again.code, str(again)) == (caught.value.code, str(caught.value))


def test_absent_tgtd_is_one_clear_error(tmp_path):
    with pytest.raises(tgt_ipc.TgtdError, match='cannot talk to tgtd at'):
        tgt_ipc.request(0, 'target', 'show',
                        socket_path=str(tmp_path / 'none'))


def test_a_privsep_daemon_that_cannot_start_is_one_clear_error(tmp_path):
    from oslo_config import cfg
    from drivers import privileged
    helper = str(tmp_path / 'no-such-helper')
    cfg.CONF.set_override('helper_command', helper,
                          group=privileged.CONFIG_SECTION)
    privileged.tgt.set_client_mode(True)
    try:
        with pytest.raises(tgt_ipc.TgtdError) as caught:
            privileged.request(0, 'target', 'show')
    finally:
        privileged.tgt.set_client_mode(os.geteuid() != 0)
        cfg.CONF.clear_override('helper_command',
                                group=privileged.CONFIG_SECTION)
    text = str(caught.value)
    assert text.startswith('the privsep daemon of [privsep_tgt] did not '
                           'start (')
    assert 'helper_command' in text and '\n' not in text

"""A private RabbitMQ node with a TLS listener, and the certificates for it.

Tests of TLS to the broker must not touch the machine's RabbitMQ (others use
it): this starts a node of its own (its own name, Erlang cookie, data, logs,
distribution port, no plugins) whose only listener is TLS on a free
loopback port, with a CA and a server certificate made by ``make_pki``.
"""

import datetime
import ipaddress
import os
import shutil
import subprocess
import time
import uuid

from volume_worker.testing import tgtd

RABBIT_BIN = '/usr/lib/rabbitmq/bin'


class NodeUnavailable(RuntimeError):
    """RabbitMQ cannot run a second node here."""


def _write_key_and_cert(directory, stem, key, cert):
    from cryptography.hazmat.primitives import serialization
    key_path = os.path.join(directory, stem + '.key')
    with open(key_path, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path = os.path.join(directory, stem + '.pem')
    with open(cert_path, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def make_pki(directory, name='test'):
    """A CA and a certificate for 127.0.0.1/localhost signed by it.

    Returns ``{'ca': ca.pem, 'cert': server.pem, 'key': server.key}``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def subject(common_name):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             common_name)])

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(minutes=5),
             now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(subject('%s CA' % name))
          .issuer_name(subject('%s CA' % name))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(valid[0]).not_valid_after(valid[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                         critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=False, content_commitment=False,
              key_encipherment=False, data_encipherment=False,
              key_agreement=False, key_cert_sign=True, crl_sign=True,
              encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(subject('localhost'))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0]).not_valid_after(valid[1])
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName('localhost'),
                x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(directory, exist_ok=True)
    ca_path, _ = _write_key_and_cert(directory, 'ca', ca_key, ca)
    os.unlink(os.path.join(directory, 'ca.key'))    # not needed again
    cert_path, key_path = _write_key_and_cert(directory, 'server', key, cert)
    return {'ca': ca_path, 'cert': cert_path, 'key': key_path}


class TlsRabbitNode:
    """A RabbitMQ node listening only with TLS on 127.0.0.1:``port``."""

    def __init__(self, directory, pki):
        self.directory = directory
        self.pki = pki
        self.name = 'vw-tls-%s@localhost' % uuid.uuid4().hex[:8]
        self.port = tgtd.free_tcp_port()
        self.dist_port = tgtd.free_tcp_port()
        self.proc = None

    def _env(self):
        d = self.directory
        return dict(os.environ,
                    HOME=d,   # its own Erlang cookie
                    RABBITMQ_NODENAME=self.name,
                    RABBITMQ_DIST_PORT=str(self.dist_port),
                    RABBITMQ_CONFIG_FILE=os.path.join(d, 'rabbitmq'),
                    RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(
                        d, 'advanced.config'),
                    RABBITMQ_MNESIA_BASE=os.path.join(d, 'mnesia'),
                    RABBITMQ_LOG_BASE=os.path.join(d, 'log'),
                    RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, 'plugins'),
                    RABBITMQ_PID_FILE=os.path.join(d, 'node.pid'))

    def _ctl(self, *args, timeout=60):
        return subprocess.run(
            [os.path.join(RABBIT_BIN, 'rabbitmqctl'), '-q', '-n', self.name]
            + list(args), env=self._env(), capture_output=True, text=True,
            timeout=timeout)

    def start(self, timeout=60):
        if not os.path.exists(os.path.join(RABBIT_BIN, 'rabbitmq-server')):
            raise NodeUnavailable('rabbitmq-server is not installed')
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, 'rabbitmq.conf'), 'w') as f:
            f.write('\n'.join([
                'listeners.tcp = none',
                'listeners.ssl.default = 127.0.0.1:%d' % self.port,
                'ssl_options.cacertfile = %s' % self.pki['ca'],
                'ssl_options.certfile = %s' % self.pki['cert'],
                'ssl_options.keyfile = %s' % self.pki['key'],
                'ssl_options.verify = verify_none',
                'ssl_options.fail_if_no_peer_cert = false', '']))
        with open(os.path.join(self.directory, 'plugins'), 'w') as f:
            f.write('[].\n')
        self._log = open(os.path.join(self.directory, 'node.log'), 'ab')
        self.proc = subprocess.Popen(
            [os.path.join(RABBIT_BIN, 'rabbitmq-server')], env=self._env(),
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NodeUnavailable('the node exited (%s); see %s'
                                      % (self.proc.returncode,
                                         self.directory))
            result = self._ctl('await_startup', timeout=max(
                1, deadline - time.monotonic()))
            if result.returncode == 0:
                return self
            time.sleep(0.5)
        self.stop()
        raise NodeUnavailable('the node did not start within %ss' % timeout)

    def url(self, user='guest', password='guest'):
        return 'rabbit://%s:%s@127.0.0.1:%d/' % (user, password, self.port)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._ctl('stop', timeout=60)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self._log.close()
        # epmd keeps nothing of ours once the node is gone.
        shutil.rmtree(os.path.join(self.directory, 'mnesia'),
                      ignore_errors=True)

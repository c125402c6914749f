"""TLS to RabbitMQ: a broker whose certificate is not trusted is refused at once.

oslo.messaging treats a failed TLS handshake like a broker that is down and
retries it forever, one ERROR line after another. An untrusted certificate
is a configuration error, not an outage: ``check`` shakes hands with the
brokers of ``transport_url`` the way the transport will ([oslo_messaging_rabbit]
``ssl_ca_file``, ``ssl_cert_file``, ``ssl_key_file``) and raises
``UntrustedBroker`` with one line saying which broker and why. A broker
that does not answer is left to the usual retries.
"""

import socket
import ssl

DEFAULT_PORT = 5672


class UntrustedBroker(Exception):
    """The broker's TLS certificate does not verify against ssl_ca_file."""


def enabled(conf):
    return bool(conf.oslo_messaging_rabbit.ssl)


def kombu_ssl(conf):
    """kombu's ``ssl`` argument for a raw connection (the event stream),
    the same as oslo.messaging's transport makes of these options."""
    section = conf.oslo_messaging_rabbit
    if not section.ssl:
        return False
    params = {}
    if section.ssl_ca_file:
        params.update(ca_certs=section.ssl_ca_file,
                      cert_reqs=ssl.CERT_REQUIRED)
    if section.ssl_cert_file:
        params['certfile'] = section.ssl_cert_file
    if section.ssl_key_file:
        params['keyfile'] = section.ssl_key_file
    return params or True


def _context(section):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # oslo.messaging verifies the chain, and the name only when told
    # ([oslo_messaging_rabbit] ssl_server_hostname): so do we.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    if section.ssl_ca_file:
        context.load_verify_locations(cafile=section.ssl_ca_file)
    else:
        context.load_default_certs()    # as the transport does then
    if section.ssl_cert_file:
        context.load_cert_chain(section.ssl_cert_file,
                                section.ssl_key_file or None)
    return context


def _brokers(conf):
    import oslo_messaging as messaging
    url = messaging.TransportURL.parse(conf, conf.transport_url)
    return [(host.hostname or '127.0.0.1', host.port or DEFAULT_PORT)
            for host in url.hosts or []]


def check(conf, timeout=5.0):
    """Raise UntrustedBroker if a reachable broker's certificate fails.

    Without ``ssl_ca_file`` the certificate is checked against the system's
    CAs, as the transport does. Does nothing when TLS is off.
    """
    section = conf.oslo_messaging_rabbit
    if not enabled(conf):
        return
    trusted_by = ('[oslo_messaging_rabbit] ssl_ca_file %s'
                  % section.ssl_ca_file if section.ssl_ca_file
                  else 'the system\'s CA store')
    try:
        context = _context(section)
    except (OSError, ssl.SSLError) as exc:
        raise UntrustedBroker(
            'cannot load the TLS files of [oslo_messaging_rabbit] (ssl_ca_file '
            '%s, ssl_cert_file %s): %s' % (
                section.ssl_ca_file, section.ssl_cert_file or '-',
                getattr(exc, 'strerror', None) or exc)) from None
    for address in _brokers(conf):
        try:
            raw = socket.create_connection(address, timeout=timeout)
        except OSError:
            continue                # down or unreachable: retried as usual
        try:
            with context.wrap_socket(raw, server_hostname=address[0]):
                pass
        except ssl.SSLCertVerificationError as exc:
            raise UntrustedBroker(
                'the broker at %s:%s presented a TLS certificate that %s '
                'does not trust: %s' % (address[0], address[1], trusted_by,
                                        exc.verify_message or exc.reason)
            ) from None
        except ssl.SSLError as exc:
            raise UntrustedBroker(
                'TLS with the broker at %s:%s failed (is it a TLS '
                'listener?): %s' % (address[0], address[1],
                                    exc.reason or exc)) from None
        except OSError:
            continue
        finally:
            raw.close()

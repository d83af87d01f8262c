"""TLS material for a secure local cluster: a local CA and the brokers' certificate.

Made with the ``cryptography`` library when ``renkei kafka up --secure`` first runs, kept
in ``<cluster home>/tls/`` and reused afterwards (clients keep trusting the same CA)::

    tls/ca.pem          the CA certificate: what every client trusts (RENKEI_SSL_CAFILE)
    tls/ca.key          the CA's private key (0600): signs a new broker certificate
    tls/broker.pem      the brokers' key (PKCS#8) + certificate + CA (0600), Kafka's
                        ``ssl.keystore.type=PEM`` keystore

Keys are ECDSA P-256: generating one takes about a millisecond, where RSA-2048 takes tens.
The broker certificate names ``127.0.0.1`` and ``localhost`` (clients verify the host
name) and its subject is ``CN=broker``, which ``ssl.principal.mapping.rules`` turns into
the principal ``User:broker`` on the mutual-TLS controller listener.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .private_files import ensure_private_dir, write_private

__all__ = ["BROKER_CN", "TlsFiles", "ensure_tls"]

BROKER_CN = "broker"
"""The brokers' certificate subject, and so their principal on the controller listener."""

_VALID = datetime.timedelta(days=825)  # the longest validity browsers accept; ample here
_SKEW = datetime.timedelta(minutes=5)  # tolerate a clock a little behind the issuer's


@dataclass(frozen=True)
class TlsFiles:
    """Where the TLS material of one cluster lives."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate clients trust."""
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def keystore(self) -> Path:
        """The brokers' PEM keystore: private key, certificate, CA certificate."""
        return self.directory / "broker.pem"

    def complete(self) -> bool:
        """Whether every file exists (then nothing is generated again)."""
        return all(p.exists() for p in (self.ca_cert, self.ca_key, self.keystore))


def ensure_tls(directory: Path) -> TlsFiles:
    """Create the CA and the broker certificate unless ``directory`` already holds them."""
    files = TlsFiles(directory)
    if files.complete():
        return files
    ensure_private_dir(directory)
    for stale in (files.ca_cert, files.ca_key, files.keystore):
        stale.unlink(missing_ok=True)  # a half-made set: start over, nobody trusts it yet
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Renkei local Kafka CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    # serverAuth for the listeners, clientAuth because brokers present the same
    # certificate to the controllers' mutual-TLS listener.
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        _builder(subject, ca_name, key.public_key(), now)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    write_private(files.ca_key, _pkcs8(ca_key))
    write_private(files.keystore, _pkcs8(key) + cert.public_bytes(pem) + ca_pem)
    # Last: its presence marks the set complete, and clients may read it (0644).
    files.ca_cert.write_bytes(ca_pem)
    files.ca_cert.chmod(0o644)
    return files


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + _VALID)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted PKCS#8: Kafka's PEM keystore reads it without ssl.key.password; the
    # file's 0600 mode in a 0700 folder is what protects it, as for the SCRAM passwords.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

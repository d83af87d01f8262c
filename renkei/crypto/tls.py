"""A certificate request for an agency's Kafka identity, made where its key is kept.

The broker knows an agency by its TLS client certificate (or its SASL user). The agency
makes the key pair itself and sends the operators' CA only a PKCS#10 request whose common
name is its agency id; the broker's ``ssl.principal.mapping.rules`` turn that name into
the principal the ACLs name. The key is ECDSA P-256, which every JVM and OpenSSL accept
for TLS client authentication.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from renkei.crypto.keyring import check_agency_id

__all__ = ["certificate_request"]


def certificate_request(agency_id: str) -> tuple[bytes, bytes]:
    """A new TLS client key and a request to certify it, both PEM.

    :returns: (the private key, PKCS#8 PEM: keep it, mode 0600; the request, PEM: send it).
    :raises ValueError: ``agency_id`` is not a valid agency id.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, check_agency_id(agency_id))])
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, request.public_bytes(serialization.Encoding.PEM)

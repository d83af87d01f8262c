"""A software passkey for tests without a browser: an ES256 (P-256) key that answers the
portal's WebAuthn options the way an authenticator and the browser together would
(``none`` attestation), as WebAuthn's JSON. Its sign count can be set back, as a clone's."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_UP, _UV, _AT = 0x01, 0x04, 0x40


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftPasskey:
    """One credential on one authenticator.

    :param origin: what the browser reports as the page's origin.
    :param verified: whether the authenticator verified the user (PIN, fingerprint).
    :param counting: whether it counts its uses (synced passkeys answer 0 every time).
    """

    def __init__(
        self, origin: str = "http://localhost:8080", *, verified: bool = True, counting: bool = True
    ) -> None:
        self.origin = origin
        self.verified = verified
        self.counting = counting
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.sign_count = 0
        self.user_handle = b""

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def _flags(self) -> int:
        return _UP | (_UV if self.verified else 0)

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """``navigator.credentials.create()`` for the portal's ``publicKey`` options."""
        rp_id = options["rp"]["id"]
        self.user_handle = base64.urlsafe_b64decode(options["user"]["id"] + "==")
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})  # fmt: skip
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest() + bytes([self._flags() | _AT])
            + self.sign_count.to_bytes(4, "big") + attested + cose
        )  # fmt: skip
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        return {
            "id": b64u(self.credential_id), "rawId": b64u(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64u(client_data),
                         "attestationObject": b64u(attestation), "transports": ["internal"]},
        }  # fmt: skip

    def get(self, options: dict[str, Any], rp_id: str = "localhost") -> dict[str, Any]:
        """``navigator.credentials.get()``: an assertion, with the sign count one higher."""
        if self.counting:
            self.sign_count += 1
        auth_data = (
            hashlib.sha256(options.get("rpId", rp_id).encode()).digest()
            + bytes([self._flags()]) + self.sign_count.to_bytes(4, "big")
        )  # fmt: skip
        client_data = self._client_data("webauthn.get", options["challenge"])
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64u(self.credential_id), "rawId": b64u(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                         "signature": b64u(signature),
                         "userHandle": b64u(self.user_handle) if self.user_handle else None},
        }  # fmt: skip

"""The secure local cluster's identities: principals, passwords and client settings files.

``renkei kafka up --secure`` gives every principal a SCRAM-SHA-512 password, generated
once and kept in ``<cluster home>/credentials/`` (mode 0700), one file per principal
(mode 0600)::

    credentials/hub.env
        RENKEI_BOOTSTRAP=127.0.0.1:19092
        RENKEI_SECURITY_PROTOCOL=SASL_SSL
        RENKEI_SASL_MECHANISM=SCRAM-SHA-512
        RENKEI_SASL_USERNAME=hub
        RENKEI_SASL_PASSWORD=…
        RENKEI_SSL_CAFILE=/…/tls/ca.pem

A process runs as that principal with ``set -a; . credentials/hub.env; set +a`` or
``KafkaSettings.for_principal("hub")``; handing an agency its one file hands it nothing
else. Passwords are never printed or logged, and never given to a command line (the
broker's own is in its ``server.properties``, also 0600; the format tool reads the first
two from a 0600 argument file).

Two principals are the cluster's own super users: ``broker`` (the brokers, between
themselves) and ``admin`` (topics, ACLs, credentials).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from renkei.errors import ConfigurationError

from .private_files import ensure_private_dir, read_private, write_private
from .scram import MECHANISM
from .tls import TlsFiles, ensure_tls

__all__ = ["ADMIN", "BROKER", "SUPER_USERS", "SecureFiles", "read_client_env"]

BROKER = "broker"
ADMIN = "admin"
SUPER_USERS = (BROKER, ADMIN)
"""Principals Kafka lets do anything (``super.users``); every other one needs ACLs."""

# SCRAM escapes "," and "=" in user names and the format tool splits on them: allow
# neither, nor anything that would need quoting in an env file or a JAAS line.
_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def read_client_env(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of a client settings file (comments and blanks skipped).

    :raises ConfigurationError: missing, open to others, or a line that is not KEY=value.
    """
    values: dict[str, str] = {}
    for number, line in enumerate(read_private(path).decode().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigurationError(f"{path}:{number}: not a KEY=value line")
        values[key] = value
    return values


class SecureFiles:
    """TLS material and credentials of the secure cluster whose home is ``home``.

    :param home: the cluster's directory (``$RENKEI_HOME/kafka``).
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.tls = TlsFiles(home / "tls")
        self.credentials_dir = home / "credentials"

    def env_file(self, principal: str) -> Path:
        """The client settings file of ``principal``."""
        return self.credentials_dir / f"{_checked(principal)}.env"

    def password(self, principal: str) -> str | None:
        """The principal's password, or ``None`` if it has none yet."""
        path = self.env_file(principal)
        if not path.exists():
            return None
        password = read_client_env(path).get("RENKEI_SASL_PASSWORD")
        if not password:
            raise ConfigurationError(f"{path} has no RENKEI_SASL_PASSWORD")
        return password

    def principals(self) -> list[str]:
        """Every principal that has a password here."""
        if not self.credentials_dir.is_dir():
            return []
        return sorted(p.stem for p in self.credentials_dir.glob("*.env"))

    def prepare(self, principals: Iterable[str]) -> dict[str, str]:
        """Make the TLS files and a password for each principal (and the super users).

        Existing passwords are kept: the cluster's storage holds their SCRAM credentials.

        :returns: principal → password, super users included.
        """
        ensure_tls(self.tls.directory)
        ensure_private_dir(self.credentials_dir)
        passwords: dict[str, str] = {}
        for principal in dict.fromkeys([*SUPER_USERS, *principals]):
            password = self.password(principal)
            if password is None:
                password = secrets.token_urlsafe(24)  # 192 bits; [A-Za-z0-9_-] only
                self._write(principal, password, bootstrap=None)
            passwords[principal] = password
        return passwords

    def publish(self, passwords: dict[str, str], bootstrap: str) -> None:
        """Write every principal's client settings file with the cluster's bootstrap."""
        for principal, password in passwords.items():
            self._write(principal, password, bootstrap)

    def _write(self, principal: str, password: str, bootstrap: str | None) -> None:
        lines = [
            f"# Kafka client settings of principal {principal!r} on the local secure "
            "cluster (`renkei kafka up --secure`). Keep private: it holds the password.",
            *([f"RENKEI_BOOTSTRAP={bootstrap}"] if bootstrap else []),
            "RENKEI_SECURITY_PROTOCOL=SASL_SSL",
            f"RENKEI_SASL_MECHANISM={MECHANISM}",
            f"RENKEI_SASL_USERNAME={principal}",
            f"RENKEI_SASL_PASSWORD={password}",
            f"RENKEI_SSL_CAFILE={self.tls.ca_cert.resolve()}",
        ]
        write_private(self.env_file(principal), ("\n".join(lines) + "\n").encode())

    def client_kwargs(self, principal: str, bootstrap: str) -> dict[str, Any]:
        """aiokafka keyword arguments for ``principal`` (used before settings exist)."""
        from aiokafka.helpers import create_ssl_context

        password = self.password(principal)
        if password is None:
            raise ConfigurationError(f"no credentials for principal {principal!r} in {self.home}")
        return {
            "bootstrap_servers": bootstrap,
            "security_protocol": "SASL_SSL",
            "ssl_context": create_ssl_context(cafile=str(self.tls.ca_cert)),
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": principal,
            "sasl_plain_password": password,
        }

    def template_values(self, passwords: dict[str, str]) -> dict[str, object]:
        """Values for the secure listener template."""
        return {
            "keystore": self.tls.keystore.resolve(),
            "truststore": self.tls.ca_cert.resolve(),
            "broker_password": passwords[BROKER],
            "super_users": ";".join(f"User:{u}" for u in SUPER_USERS),
        }

    def format_arguments(self, passwords: dict[str, str]) -> list[str]:
        """``kafka-storage format`` arguments that add the super users' SCRAM credentials."""
        return [
            arg
            for user in SUPER_USERS
            for arg in ("--add-scram", f"{MECHANISM}=[name={user},password={passwords[user]}]")
        ]


def _checked(principal: str) -> str:
    if not _PRINCIPAL.match(principal):
        raise ConfigurationError(
            f"principal name {principal!r} must be 1-100 characters of a-z, 0-9, '.', '_', '-'"
        )
    return principal

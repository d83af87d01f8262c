"""The citizen portal (マイ・ポータル): who asked what about me, when, under which law.

:mod:`.index` holds every person's records in memory from a replay of ``hub.audit``;
:mod:`.auth` authenticates citizens by a signed challenge; :mod:`.app` serves the API and
the page. ``docs/audit.md`` describes the registration and the login.
"""

from __future__ import annotations

from .app import COOKIE, create_app
from .auth import Authenticator, CitizenRegistry, Session, login_message, register_citizen
from .index import PortalIndex, Row

__all__ = [
    "COOKIE",
    "Authenticator",
    "CitizenRegistry",
    "PortalIndex",
    "Row",
    "Session",
    "create_app",
    "login_message",
    "register_citizen",
]

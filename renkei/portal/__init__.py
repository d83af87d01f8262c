"""The citizen portal (マイ・ポータル): who asked what about me, when, under which law.

:mod:`.trail` believes only records a tree head or checkpoint signed with a pinned key
vouches for (:mod:`.signed` checks those, :mod:`.partitions` is what it keeps);
:mod:`.follow` feeds it from Kafka into :mod:`.index`, which holds every person's records
in memory. :mod:`.auth` authenticates citizens by a signed challenge against their keys
in :mod:`.citizens` and hands out signed sessions; :mod:`.passkeys` logs them in with a
passkey registered with the registry's one-time code (:mod:`.offers` the signed offers,
:mod:`.registrar` the hub side, :mod:`.passkey_store` and :mod:`.passkey_follow` what the
topics say, :mod:`.passkey_routes` the pages and API). :mod:`.app` serves the API and the
pages (:mod:`.pages`, Jinja2 templates; :mod:`.evidence` and :mod:`.scripts` give the
history page what its script ``static/verify.js`` proves each record with);
:mod:`.refusals` is what it accepts and how it refuses the rest; :mod:`.guard` adds
security headers and bounds request bodies.
:mod:`.settings` is where the pinned keys and the secret come from. ``docs/audit.md``
says what is verified and how login works.
"""

from __future__ import annotations

from .app import COOKIE, LoginLimits, LoginRequest, create_app
from .auth import Authenticator, Session, login_message
from .citizens import CitizenRegistry, register_citizen
from .index import PortalIndex, Row
from .passkeys import PasskeyConfig, Passkeys
from .settings import PortalSettings, PortalTrust
from .trail import TrailStats, TrailVerifier, Verified

__all__ = [
    "COOKIE",
    "Authenticator",
    "CitizenRegistry",
    "LoginLimits",
    "LoginRequest",
    "PasskeyConfig",
    "Passkeys",
    "PortalIndex",
    "PortalSettings",
    "PortalTrust",
    "Row",
    "Session",
    "TrailStats",
    "TrailVerifier",
    "Verified",
    "create_app",
    "login_message",
    "register_citizen",
]

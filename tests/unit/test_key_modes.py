"""Every key Renkei writes is 0600 in a 0700 folder; public files are 0644. Whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from renkei.auditchain import SIGNING_FILE, TRUST_FILE, load_or_create_signer
from renkei.cli.app import app
from renkei.crypto import MasterSecret, keystore
from renkei.crypto._files import ensure_private_dir
from renkei.crypto.bundles import BUNDLE_SUFFIX
from renkei.crypto.keystore import InsecurePermissionsWarning
from renkei.errors import ConfigurationError
from renkei.operator.onboarding import agency_init, hub_init
from renkei.operator.publish import init_keys

PUBLIC_SUFFIXES = (BUNDLE_SUFFIX, ".csr.pem", TRUST_FILE)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True, params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run each test under a usual and a careless umask: modes must not depend on it."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def assert_private_folder(folder: Path) -> list[str]:
    """The folder is 0700, keys in it 0600, public files 0644; return the file names."""
    assert mode(folder) == 0o700, folder
    names = []
    for path in sorted(folder.iterdir()):
        public = path.name.endswith(PUBLIC_SUFFIXES)
        assert mode(path) == (0o644 if public else 0o600), f"{path.name}: {mode(path):o}"
        names.append(path.name)
    return names


def test_keys_init_makes_a_private_folder(tmp_path: Path) -> None:
    key_dir = tmp_path / "deploy" / "keys"
    init_keys(key_dir)
    names = assert_private_folder(key_dir)
    assert {"master.key", "hub.json", "hub.public.json", "agency-operator.json"} <= set(names)
    assert "agency-jps.public.json" in names


def test_agency_init_makes_a_private_folder(tmp_path: Path) -> None:
    agency_init(tmp_path / "nta", "nta")
    assert assert_private_folder(tmp_path / "nta") == [
        "agency-nta.csr.pem",
        "agency-nta.json",
        "agency-nta.public.json",
        "agency-nta.tls-key.pem",
    ]


def test_hub_keys_and_master_secret(tmp_path: Path) -> None:
    hub_init(tmp_path / "hub")
    assert assert_private_folder(tmp_path / "hub") == ["hub.json", "hub.public.json", "master.key"]
    MasterSecret.generate_file(tmp_path / "elsewhere" / "master.key")
    assert_private_folder(tmp_path / "elsewhere")


def test_the_audit_signer_key(tmp_path: Path) -> None:
    load_or_create_signer(tmp_path / "audit")
    assert assert_private_folder(tmp_path / "audit") == [SIGNING_FILE, TRUST_FILE]


def test_a_citizens_key(tmp_path: Path) -> None:
    out = tmp_path / "card" / "citizen.json"
    result = CliRunner().invoke(app, ["portal", "citizen-key", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert assert_private_folder(out.parent) == ["citizen.json"]


def test_an_existing_open_key_folder_is_reported_not_changed(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.warns(InsecurePermissionsWarning, match="chmod 700"):
        ensure_private_dir(folder)
    with pytest.warns(InsecurePermissionsWarning):
        init_keys(folder)
    assert mode(folder) == 0o755
    assert mode(keystore.agency_key_path(folder, "jps")) == 0o600


def test_the_hub_refuses_its_key_file_when_others_may_read_it(tmp_path: Path) -> None:
    from hub_stream.settings import HubSettings
    from hub_stream.worker import load_hub_keys

    hub_init(tmp_path)
    keystore.hub_key_path(tmp_path).chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"hub\.json is accessible to others"):
        load_hub_keys(HubSettings(key_dir=tmp_path))

"""``renkei acl sync | list``: the broker's ACLs, derived from the directory.

Both commands talk to Kafka as the ``admin`` super user: the settings in the environment
when they name a SASL user (an external cluster), else the local secure cluster's
``admin`` credentials under ``$RENKEI_HOME``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from infra.kafka import LocalCluster
from infra.kafka.acls import describe_acls
from infra.kafka.wire import admin_client, broker_ids
from renkei.operator.acl import desired_acls, in_scope, sync_acls
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import ADMIN, principal_names
from renkei.settings import KafkaSettings
from renkei.topics import Topics

from ._common import console, friendly_errors

__all__ = ["acl_app"]

acl_app = typer.Typer(
    help="Kafka ACLs of a secure cluster, from the directory.", no_args_is_help=True
)

Prefix = Annotated[
    str, typer.Option(help="Topic prefix of the deployment.", envvar="RENKEI_HUB_TOPIC_PREFIX")
]
DirectoryPath = Annotated[
    Path | None, typer.Option("--file", help="Directory file; the packaged sample by default.")
]


def _admin() -> KafkaSettings:
    settings = KafkaSettings()
    if settings.sasl_username is not None:
        return settings
    return KafkaSettings.for_principal(ADMIN, settings.home)


def _local_secure_cluster() -> LocalCluster | None:
    cluster = LocalCluster(KafkaSettings().home / "kafka")
    state = cluster.state()
    if state is None or not state.secure or not cluster.running_pids():
        return None
    return cluster


@acl_app.command()
@friendly_errors
def sync(
    prefix: Prefix = "",
    file: DirectoryPath = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
) -> None:
    """Grant exactly what the directory says: add missing ACLs, remove stale ones.

    On the local secure cluster it first gives every new agency a principal and password.
    """
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    directory = load_directory_file(file)
    cluster = _local_secure_cluster()
    if cluster is not None and not dry_run:
        new = cluster.add_principals(principal_names(directory))
        for principal in sorted(new):
            path = cluster.files.env_file(principal)
            console.print(f"new principal {principal}: {path}", soft_wrap=True)
    kafka = _admin().kafka_kwargs()
    report = asyncio.run(sync_acls(kafka, directory, Topics(prefix), dry_run=dry_run))
    for binding in report.added:
        console.print(f"[green]+[/] {binding}", soft_wrap=True)
    for binding in report.removed:
        console.print(f"[red]-[/] {binding}", soft_wrap=True)
    verb = "would add" if dry_run else "added"
    console.print(
        f"{verb} {len(report.added)}, {'would remove' if dry_run else 'removed'} "
        f"{len(report.removed)}, kept {report.kept} ACL(s) under prefix {prefix!r}"
    )


@acl_app.command("list")
@friendly_errors
def list_acls(prefix: Prefix = "", file: DirectoryPath = None) -> None:
    """Show the ACLs of our principals under the prefix; mark those the directory lacks."""
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    wanted = desired_acls(load_directory_file(file), Topics(prefix))

    async def current() -> list[str]:
        async with admin_client(_admin().kafka_kwargs()) as client:
            held = await describe_acls(client, broker_ids(client)[0])
        topics = Topics(prefix)
        return [
            f"{'  ' if b in wanted else '[red]![/] '}{b}"
            for b in sorted(held)
            if in_scope(b, topics)
        ]

    lines = asyncio.run(current())
    for line in lines:
        console.print(line, soft_wrap=True)
    console.print(f"{len(lines)} ACL(s); [red]![/] = not in the directory (sync removes it)")

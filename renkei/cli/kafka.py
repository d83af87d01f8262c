"""``renkei kafka up|down|status|logs``: the local Kafka cluster."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from infra.kafka import LocalCluster
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import principal_names
from renkei.settings import KafkaSettings

from ._common import console, friendly_errors

__all__ = ["kafka_app"]

kafka_app = typer.Typer(help="Run a local Apache Kafka cluster on 127.0.0.1.", no_args_is_help=True)

Nodes = Annotated[int, typer.Option("--nodes", help="1, or 3 for fault tests.")]
Port = Annotated[int, typer.Option("--port", help="First broker port.", envvar="RENKEI_KAFKA_PORT")]
Secure = Annotated[
    bool,
    typer.Option(
        "--secure",
        help="TLS + SASL/SCRAM-SHA-512 listeners and ACLs (nothing allowed without one); "
        "a principal per agency of the directory and hub, registry, operator, portal, admin.",
    ),
]
DirectoryOption = Annotated[
    Path | None,
    typer.Option(
        "--directory", help="(--secure) Directory file naming the agencies; default: the sample."
    ),
]


def _cluster(
    nodes: int = 1, port: int = 19092, secure: bool = False, principals: list[str] | None = None
) -> LocalCluster:
    home = KafkaSettings().home / "kafka"
    return LocalCluster(
        home, nodes=nodes, base_port=port, secure=secure, principals=principals or ()
    )


@kafka_app.command()
@friendly_errors
def up(
    nodes: Nodes = 1,
    port: Port = 19092,
    secure: Secure = False,
    directory: DirectoryOption = None,
    timeout_s: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 90,
) -> None:
    """Fetch the jars once, format KRaft storage, start, wait, print the bootstrap address."""
    # aiokafka logs every refused connection while the broker starts; that is expected here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    principals = principal_names(load_directory_file(directory)) if secure else []
    cluster = _cluster(nodes, port, secure, principals)
    cluster.runtime.ensure_jars()
    started = time.monotonic()
    bootstrap = cluster.up(timeout_s=timeout_s)
    console.print(f"[dim]Kafka ready in {time.monotonic() - started:.1f} s[/]", highlight=False)
    if secure:
        files = cluster.files
        console.print(
            f"secure: SASL_SSL + SCRAM-SHA-512, CA {files.tls.ca_cert}\n"
            f"client settings, one file per principal: {files.credentials_dir}/<principal>.env "
            "(`set -a; . FILE; set +a`)\n"
            "nothing is allowed yet: `renkei acl sync` grants what the directory says",
            soft_wrap=True,  # unwrapped: the paths are copied from the terminal whole
        )
    typer.echo(bootstrap)


@kafka_app.command()
@friendly_errors
def down() -> None:
    """Stop the Kafka processes that `renkei kafka up` started (by PID), nothing else."""
    stopped = _cluster().down()
    console.print(f"stopped {len(stopped)} node(s)" if stopped else "nothing was running")


@kafka_app.command()
@friendly_errors
def status() -> None:
    """Show the recorded cluster and which of its nodes are running."""
    cluster = _cluster()
    state = cluster.state()
    if state is None:
        console.print("no local cluster: `renkei kafka up` starts one")
        raise typer.Exit(1)
    running = cluster.running_pids()
    mode = ", secure (SASL_SSL)" if state.secure else ""
    console.print(f"Kafka {state.kafka_version}, bootstrap {state.bootstrap}{mode}")
    for node in state.nodes:
        pid = running.get(node.node_id)
        mark = f"[green]running[/] pid {pid}" if pid else "[red]stopped[/]"
        console.print(f"  node {node.node_id}: {mark}  port {node.broker_port}  {node.directory}")
    if len(running) != len(state.nodes):
        raise typer.Exit(1)


@kafka_app.command()
@friendly_errors
def logs(
    node: Annotated[int, typer.Option(help="Which node's log.")] = 1,
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many last lines.")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing.")] = False,
) -> None:
    """Print the end of a node's server log."""
    state = _cluster().state()
    if state is None:
        console.print("no local cluster: `renkei kafka up` starts one")
        raise typer.Exit(1)
    spec = next((n for n in state.nodes if n.node_id == node), None)
    if spec is None or not Path(spec.log).exists():
        console.print(f"no log for node {node}")
        raise typer.Exit(1)
    command = ["tail", f"-n{lines}", *(["-F"] if follow else []), str(spec.log)]
    subprocess.run(command, check=False)  # noqa: S603 - our own fixed command

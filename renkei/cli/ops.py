"""``renkei ops up|targets|status|down``: a local Prometheus scraping the hub's workers."""

from __future__ import annotations

from typing import Annotated

import typer

from renkei.ops.prometheus import Prometheus, alert_rules, running
from renkei.settings import KafkaSettings

from ._common import console, friendly_errors

__all__ = ["ops_app"]

ops_app = typer.Typer(
    help="Run a local Prometheus (Debian's) that scrapes the hub and evaluates Renkei's alerts.",
    no_args_is_help=True,
)

Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        help="A worker's health port to scrape, HOST:PORT (repeat for more); "
        "replaces the recorded ones.",
    ),
]


def _home() -> Prometheus:
    # The port is only known once it runs; 9090 stands in for files-only operations.
    home = KafkaSettings().home
    return running(home) or Prometheus(home)


@ops_app.command()
@friendly_errors
def up(
    port: Annotated[int, typer.Option("--port", help="Web UI and API port on 127.0.0.1.")] = 9090,
    target: Targets = None,
    timeout_s: Annotated[float, typer.Option(help="Seconds to wait for /-/ready.")] = 30,
) -> None:
    """Start Prometheus unless it already runs, wait until ready, print its URL last."""
    prometheus = Prometheus(KafkaSettings().home, port)
    if target is not None:
        prometheus.set_targets(target)
    prometheus.start(timeout_s=timeout_s)
    scraped = prometheus.targets()
    console.print(
        f"scraping {', '.join(scraped) if scraped else 'nothing yet (`renkei ops targets`)'} "
        f"every 1 s; rules {alert_rules()}; data {prometheus.directory}",
        soft_wrap=True,  # unwrapped: the paths are copied from the terminal whole
    )
    typer.echo(prometheus.url)


@ops_app.command()
@friendly_errors
def targets(
    target: Annotated[list[str], typer.Argument(help="HOST:PORT of each worker to scrape.")],
) -> None:
    """Replace the hub workers Prometheus scrapes (it re-reads them within 2 s)."""
    prometheus = _home()
    prometheus.set_targets(target)
    console.print(f"scraping {', '.join(target) if target else 'nothing'}")


@ops_app.command()
@friendly_errors
def status() -> None:
    """Show whether Prometheus runs, where, and what it scrapes; exit 1 if it does not run."""
    prometheus = running(KafkaSettings().home)
    if prometheus is None:
        console.print("Prometheus is not running: `renkei ops up` starts it")
        raise typer.Exit(1)
    console.print(f"Prometheus [green]running[/] pid {prometheus.pid()} at {prometheus.url}")
    for scraped in prometheus.query('up{job="renkei-hub"}'):
        mark = "[green]up[/]" if scraped["value"][1] == "1" else "[red]down[/]"
        console.print(f"  {scraped['metric'].get('instance', '?')}: {mark}")
    for alert in prometheus.alerts():
        name = alert["labels"].get("alertname", "?")
        console.print(
            f"  alert {name}: {alert['state']}  {alert['annotations'].get('summary', '')}",
            soft_wrap=True,  # one alert a line, however long its summary
        )


@ops_app.command()
@friendly_errors
def down() -> None:
    """Stop the Prometheus that `renkei ops up` started (by PID), nothing else."""
    pid = _home().stop()
    console.print(f"stopped Prometheus (pid {pid})" if pid else "nothing was running")

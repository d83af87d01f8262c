"""The hub's Grafana dashboard, generated: ``make dashboard`` runs this module.

Built with Grafana's own ``grafana-foundation-sdk`` (the build for Grafana 11.x, a dev
dependency) rather than written by hand, so every panel is typed and the committed
``infra/grafana/renkei.json`` is this module's output, byte for byte — a unit test holds
it to that, so change the panels here and regenerate, never the JSON.

Every query reads the metrics the hub workers export at ``GET /metrics`` (the catalogue in
docs/operations.md). Rates use Grafana's ``$__rate_interval`` (at least four scrape
intervals); the data source is the ``datasource`` variable, chosen on import.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption

__all__ = ["OUTPUT", "PANELS", "ROWS", "Panel", "Query", "build", "render", "write"]

OUTPUT = Path(__file__).with_name("renkei.json")
"""Where the generated dashboard is committed."""

RATE = "[$__rate_interval]"
"""The window of every ``rate()``: Grafana's, never shorter than four scrapes."""

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
DEFAULT_SOURCE = VariableOption(selected=True, text="default", value="default")
"""The data source picked until the user picks another: Grafana's default one."""


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel and the legend of its series."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One panel: what it shows, its queries, its unit; ``stat`` for a single number."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    stat: bool = False
    width: int = field(default=8)


def _rate(metric: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{RATE}))"


def _quantiles(histogram: str, by: str = "") -> tuple[Query, ...]:
    """p50 and p99 of a histogram over all workers (per ``by`` label if given)."""
    labels = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket{RATE})))",
            f"p{round(q * 100)}{suffix}",
        )
        for q in (0.5, 0.99)
    )


# One panel a paragraph reads better than ruff's one argument a line.
# fmt: off
ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    ("Workers", (
        Panel("Hub workers up / ready", "Per worker: 1 while Prometheus reaches it (up) and "
              "while its /healthz says ready; a worker restoring or joining shows up=1, "
              "ready=0.", (
                  Query("renkei_hub_ready * on (instance) group_left (worker, role) "
                        "renkei_hub_info", "{{worker}} ({{role}}) ready"),
                  Query('up{job="renkei-hub"}', "{{instance}} up"),
              )),
        Panel("Partitions owned", "Input partitions (partitioned topology: buckets) each "
              "worker owns; they move on a rebalance.",
              (Query("renkei_hub_partitions_owned", "{{instance}}"),)),
        Panel("Restore remaining", "State records each worker still has to restore before "
              "it is ready; 0 once restored.",
              (Query("renkei_hub_restore_remaining_records", "{{instance}}"),)),
    )),
    ("Traffic", (
        Panel("Inputs/s by type", "Inbound messages the hub handled, by message type "
              "(undecodable: failed to decode).",
              (Query(_rate("renkei_hub_inputs_total", "type"), "{{type}}"),), "ops"),
        Panel("Outputs/s by kind", "Records the hub wrote, by kind (request, answer, notice, "
              "audit, ...).",
              (Query(_rate("renkei_hub_outputs_total", "type"), "{{type}}"),), "ops"),
        Panel("Refusals/s by code", "Inputs refused, by the contract's error code — the same "
              "code the agency reads in its answer.",
              (Query(_rate("renkei_hub_refusals_total", "code"), "{{code}}"),), "ops"),
        Panel("Dead letters/s", "Records written to the dead-letter topic: each one is an "
              "input the hub could not handle (renkei deadletter shows them).",
              (Query(_rate("renkei_hub_dead_letters_total"), "dead letters"),), "ops"),
        Panel("Notices/s by kind", "Life-event notices fanned out to subscribers, by kind.",
              (Query(_rate("renkei_hub_notices_total", "kind"), "{{kind}}"),), "ops"),
        Panel("Deadlines expired/s", "Requests nobody answered in time (the requester got "
              "TIMEOUT); late answers after that are dropped.", (
                  Query(_rate("renkei_hub_deadlines_expired_total"), "expired"),
                  Query(_rate("renkei_hub_late_answers_total"), "late answers"),
              ), "ops"),
    )),
    ("Latency", (
        Panel("Stage latency p50 / p99", "Time a batch spends in each stage of the loop: "
              "handle, commit, poll to commit.",
              _quantiles("renkei_hub_stage_seconds", "stage"), "s"),
        Panel("Exchange p50 / p99", "End to end at the hub: a request's Kafka timestamp to "
              "the commit of the batch that routed its answer back.",
              _quantiles("renkei_hub_exchange_seconds"), "s"),
        Panel("Transaction commit p50 / p99", "The transaction's commit alone (send_offsets "
              "and EndTxn): the brokers' share of a batch.",
              _quantiles("renkei_hub_transaction_commit_seconds"), "s"),
        Panel("Batch size", "Records a batch (a transaction) carries: larger batches under "
              "load amortise the commit.", (
                  *_quantiles("renkei_hub_batch_records"),
                  Query(f"{_rate('renkei_hub_batch_records_sum')} / "
                        f"{_rate('renkei_hub_batch_records_count')}", "mean"),
              )),
        Panel("Pending requests", "Requests forwarded to a provider and not yet answered or "
              "expired, per worker.",
              (Query("renkei_hub_pending_requests", "{{instance}}"),)),
    )),
    ("Kafka", (
        Panel("Inbox lag by agency", "How far each agency's inbox consumer group is behind "
              "its inbox topics (records); every worker reports it, so the max.",
              (Query("max by (agency) (renkei_agency_inbox_lag_records)", "{{agency}}"),)),
        Panel("Kafka requests/s by kind", "Kafka protocol requests the workers' clients "
              "send, by kind (Fetch, Produce, AddPartitionsToTxn, ...).",
              (Query(_rate("renkei_hub_kafka_requests_total", "kind"), "{{kind}}"),), "reqps"),
        Panel("Under-replicated partitions", "Partitions of the hub's topics whose ISR is "
              "smaller than their replica set: anything above 0 is a broker in trouble.",
              (Query("max (renkei_kafka_under_replicated_partitions)", "under-replicated"),),
              stat=True, width=4),
        Panel("Signature failures", "Agency records whose signature failed: verifier "
              "workers' failures plus a strict hub's BAD_SIGNATURE refusals (0 when none; "
              "above 0 is the alarm), beside the workers by role and signature mode, so "
              "a 0 with nobody checking shows as such.", (
                  # 0, not "no data", when nothing failed: a strict hub exports no verifier
                  # counters and a refusal code appears only once it has been used.
                  Query("(sum (renkei_hub_signature_failures_total) or vector(0)) + "
                        '(sum (renkei_hub_refusals_total{code="BAD_SIGNATURE"}) or vector(0))',
                        "failed"),
                  Query("count by (role, signatures) (renkei_hub_info)",
                        "{{role}} workers, {{signatures}}"),
              ), stat=True, width=4),
    )),
)
# fmt: on
"""The dashboard's rows, each with its panels in order."""

PANELS: tuple[Panel, ...] = tuple(p for _, panels in ROWS for p in panels)
"""Every panel of :data:`ROWS`."""


def _panel(panel: Panel, panel_id: int) -> timeseries.Panel | stat.Panel:
    builder = stat.Panel() if panel.stat else timeseries.Panel()
    builder.id(panel_id).title(panel.title).description(panel.description).datasource(DATASOURCE)
    builder.unit(panel.unit).height(8).span(panel.width)
    for ref, query in zip("ABCDEFGH", panel.queries, strict=False):
        target = prometheus.Dataquery().expr(query.expr).legend_format(query.legend)
        builder.with_target(target.ref_id(ref).datasource(DATASOURCE))
    return builder


def build() -> dash.Dashboard:
    """The dashboard builder: a data-source variable, then the rows of :data:`ROWS`."""
    source = dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    board = (
        dash.Dashboard("Renkei hub")
        .uid("renkei-hub")
        .description("Renkei's hub workers: traffic, refusals, latency, Kafka (docs/operations.md)")
        .tags(["renkei"])
        .refresh("5s")
        .time("now-15m", "now")
        .timezone("browser")
        .editable()
        .with_variable(source.current(DEFAULT_SOURCE))
    )
    # Ids of their own, in order: Grafana links to a panel (viewPanel=N) by its id.
    ids = itertools.count(1)
    for title, panels in ROWS:
        board.with_row(dash.Row(title).id(next(ids)))
        for panel in panels:
            board.with_panel(_panel(panel, next(ids)))
    return board


def render() -> str:
    """The dashboard's JSON as committed: sorted keys, two-space indents, a final newline."""
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"  # fmt: skip


def write(path: Path = OUTPUT) -> Path:
    """Write :func:`render` to ``path`` (``infra/grafana/renkei.json``); return it."""
    path.write_text(render(), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.stdout.write(f"wrote {write()}\n")

"""The ``renkei`` command: wires every sub-command group into one Typer app."""

from __future__ import annotations

import typer

from .acl import acl_app
from .audit import audit_app
from .deadletter import deadletter_app
from .demo import demo
from .hub import hub
from .kafka import kafka_app
from .keys import directory_app, keys_app
from .link import link_app
from .ops import ops_app
from .portal import portal_app
from .registry import registry_app
from .top import top

app = typer.Typer(
    name="renkei",
    help="Renkei: an inter-agency data linkage hub on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(kafka_app, name="kafka")
app.add_typer(ops_app, name="ops")
app.add_typer(acl_app, name="acl")
app.command("hub")(hub)
app.add_typer(keys_app, name="keys")
app.add_typer(directory_app, name="directory")
app.command("demo")(demo)
app.add_typer(audit_app, name="audit")
app.add_typer(portal_app, name="portal")
app.add_typer(registry_app, name="registry")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(link_app, name="link")
app.command("top")(top)

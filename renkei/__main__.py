"""``python -m renkei`` runs the ``renkei`` command."""

from renkei.cli import app

app()

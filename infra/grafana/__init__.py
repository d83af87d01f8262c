"""Grafana: the hub dashboard and its generator (:mod:`.dashboard`, a dev tool)."""

"""Operating a deployment: the monitoring runtime beside the hub (Prometheus and its rules)."""

from __future__ import annotations

from .prometheus import (
    HUB_JOB,
    BadTargetError,
    Prometheus,
    PrometheusError,
    PrometheusMissing,
    PrometheusStartError,
    alert_rules,
    find_prometheus,
    find_promtool,
    running,
)

__all__ = [
    "HUB_JOB",
    "BadTargetError",
    "Prometheus",
    "PrometheusError",
    "PrometheusMissing",
    "PrometheusStartError",
    "alert_rules",
    "find_prometheus",
    "find_promtool",
    "running",
]

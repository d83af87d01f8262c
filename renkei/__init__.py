"""Renkei — an event-driven hub for inter-agency data linkage without a common identifier."""

__version__ = "0.1.0"
__all__ = ["__version__"]

"""hub_stream."""

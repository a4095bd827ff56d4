"""kodad: a coding-agent engine served over gRPC."""

__version__ = "0.2.0"

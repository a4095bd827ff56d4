"""kodad: a coding-agent engine served over gRPC."""

__version__ = "0.1.0"

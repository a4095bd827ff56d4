"""`kodad chat` and `kodad sessions`: terminal clients of the gRPC API (kodad.client only)."""

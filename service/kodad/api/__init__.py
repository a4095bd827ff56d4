"""The gRPC edge: protobuf <-> domain translation, status codes, servicers. No logic."""

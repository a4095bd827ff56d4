"""Server reflection that serves koda.v1's descriptors with their source info, so `grpcurl
describe` shows the proto's comments. The generated modules carry descriptors without it;
tools/generate.sh writes them with it to kodad/gen/koda/v1/koda.binpb."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor


@cache
def _commented() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """koda.v1's files as buf built them, comments included, by file name."""
    data = resources.files("kodad.gen.koda.v1").joinpath("koda.binpb").read_bytes()
    return {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(data).file}


class _File:
    """A file descriptor as the reflection service reads it (name, dependencies, a copy),
    its copy taken with source info when it is one of koda.v1's."""

    def __init__(self, descriptor: FileDescriptor) -> None:
        self._descriptor = descriptor
        self.name = descriptor.name

    @property
    def dependencies(self) -> list[_File]:
        return [_File(dependency) for dependency in self._descriptor.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        commented = _commented().get(self.name)
        if commented is not None:
            proto.CopyFrom(commented)
        else:
            self._descriptor.CopyToProto(proto)


class CommentedPool:
    """The default descriptor pool, whose files come with their comments (see _File)."""

    def __init__(self) -> None:
        self._pool = descriptor_pool.Default()

    def FindFileByName(self, name: str) -> _File:
        return _File(self._pool.FindFileByName(name))

    def FindFileContainingSymbol(self, symbol: str) -> _File:
        return _File(self._pool.FindFileContainingSymbol(symbol))

    def __getattr__(self, name: str) -> Any:  # messages and extensions: the pool's own
        return getattr(self._pool, name)

"""A protoc plugin that runs grpcio-tools' built-in grpc_python generator.

grpcio-tools embeds the generator in its protoc instead of shipping a plugin binary, so this
reads the CodeGeneratorRequest, hands its descriptors to that protoc and answers with the
files it wrote.
"""

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse()
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        fds = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        (root / "in.pb").write_bytes(fds.SerializeToString())
        out = root / "out"
        out.mkdir()
        args = ["protoc", f"--descriptor_set_in={root / 'in.pb'}", f"--grpc_python_out={out}"]
        if protoc.main([*args, *request.file_to_generate]) != 0:
            response.error = "grpc_python generation failed"
        for path in sorted(out.rglob("*.py")):
            file = response.file.add()
            file.name = path.relative_to(out).as_posix()
            file.content = path.read_text()
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())

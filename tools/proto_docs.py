"""The contract's reference in Markdown, from the descriptor set `buf build` writes with its
source info (every comment of proto/koda/v1): docs/reference.md. Run by tools/generate.sh;
`make check-generated` fails when it is stale.

    python tools/proto_docs.py DESCRIPTOR_SET OUTPUT.md
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2 as d

# Paths in SourceCodeInfo: FileDescriptorProto fields, then the fields of what they hold.
MESSAGE, ENUM, SERVICE = 4, 5, 6
FIELD, NESTED, NESTED_ENUM, VALUE, METHOD = 2, 3, 4, 2, 2

TYPES = {
    number: name.removeprefix("TYPE_").lower()
    for name, number in d.FieldDescriptorProto.Type.items()
}


def comments(file: d.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Each declaration's leading comment, by its path, as one paragraph per blank line."""
    found = {}
    for location in file.source_code_info.location:
        text = location.leading_comments.strip()
        if text:
            lines = [line.strip() for line in text.splitlines()]
            found[tuple(location.path)] = "\n".join(lines)
    return found


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def field_type(field: d.FieldDescriptorProto) -> str:
    if field.type_name:
        name = field.type_name.lstrip(".")
        kind = (
            f"[`{name.rsplit('.', 1)[-1]}`](#{anchor(name)})"
            if name.startswith("koda.")
            else f"`{name}`"
        )
    else:
        kind = f"`{TYPES[field.type]}`"
    repeated = field.label == d.FieldDescriptorProto.LABEL_REPEATED
    return f"repeated {kind}" if repeated else kind


def anchor(full_name: str) -> str:
    return full_name.replace(".", "").lower()


def message(
    m: d.DescriptorProto, prefix: str, path: tuple[int, ...], notes: dict[tuple[int, ...], str]
) -> Iterator[str]:
    full = f"{prefix}.{m.name}"
    if m.options.map_entry:
        return
    yield f'<a id="{anchor(full)}"></a>\n### {full.removeprefix("koda.v1.")}\n'
    if path in notes:
        yield notes[path] + "\n"
    if m.field:
        yield "| field | number | type | description |\n|---|---|---|---|"
        for i, f in enumerate(m.field):
            oneof = ""
            if f.HasField("oneof_index") and not f.proto3_optional:
                oneof = f" (oneof `{m.oneof_decl[f.oneof_index].name}`)"
            note = cell(notes.get((*path, FIELD, i), ""))
            yield f"| `{f.name}` | {f.number} | {field_type(f)}{oneof} | {note} |"
        yield ""
    for i, e in enumerate(m.enum_type):
        yield from enum(e, full, (*path, NESTED_ENUM, i), notes)
    for i, nested in enumerate(m.nested_type):
        yield from message(nested, full, (*path, NESTED, i), notes)


def enum(
    e: d.EnumDescriptorProto, prefix: str, path: tuple[int, ...], notes: dict[tuple[int, ...], str]
) -> Iterator[str]:
    full = f"{prefix}.{e.name}"
    yield f'<a id="{anchor(full)}"></a>\n### {full.removeprefix("koda.v1.")} (enum)\n'
    if path in notes:
        yield notes[path] + "\n"
    yield "| value | number | description |\n|---|---|---|"
    for i, v in enumerate(e.value):
        yield f"| `{v.name}` | {v.number} | {cell(notes.get((*path, VALUE, i), ''))} |"
    yield ""


def render(files: list[d.FileDescriptorProto]) -> str:
    out = [
        "# koda.v1 reference",
        "",
        "Generated from `proto/koda/v1` by `tools/proto_docs.py` (`make generate`); the proto's",
        "comments are the documentation. Do not edit by hand.",
        "",
    ]
    for file in files:
        notes = comments(file)
        prefix = file.package
        out += [f"## {file.name}", ""]
        for si, service in enumerate(file.service):
            out.append(f"### service {prefix}.{service.name}\n")
            if (SERVICE, si) in notes:
                out.append(notes[(SERVICE, si)] + "\n")
            for mi, method in enumerate(service.method):
                streams = (
                    "stream " if method.client_streaming else "",
                    "stream " if method.server_streaming else "",
                )
                request, response = method.input_type.lstrip("."), method.output_type.lstrip(".")
                out.append(
                    f"#### {method.name}\n\n`rpc {method.name}({streams[0]}{request}) returns "
                    f"({streams[1]}{response})`\n"
                )
                if (SERVICE, si, METHOD, mi) in notes:
                    out.append(notes[(SERVICE, si, METHOD, mi)] + "\n")
        for i, e in enumerate(file.enum_type):
            out += list(enum(e, prefix, (ENUM, i), notes))
        for i, m in enumerate(file.message_type):
            out += list(message(m, prefix, (MESSAGE, i), notes))
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    descriptors = d.FileDescriptorSet.FromString(Path(sys.argv[1]).read_bytes())
    files = [f for f in descriptors.file if f.package == "koda.v1"]
    Path(sys.argv[2]).write_text(render(sorted(files, key=lambda f: f.name)))


if __name__ == "__main__":
    main()

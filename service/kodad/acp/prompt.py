"""An ACP prompt (content blocks) as the text and images of a kodad turn."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field

from acp import RequestError
from acp.schema import (
    AudioContentBlock,
    BlobResourceContents,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    ResourceContentBlock,
    TextContentBlock,
    TextResourceContents,
)

from kodad.gen.koda.v1 import session_pb2 as spb

Block = (
    TextContentBlock
    | ImageContentBlock
    | AudioContentBlock
    | ResourceContentBlock
    | EmbeddedResourceContentBlock
)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass
class TurnInput:
    text: str = ""
    images: list[spb.Image] = field(default_factory=list)


def _image(data: str, mime_type: str, where: str) -> spb.Image:
    if mime_type not in IMAGE_TYPES:
        raise RequestError.invalid_params(
            {
                "details": f"{where}: {mime_type or 'no MIME type'} is not one of "
                + ", ".join(sorted(IMAGE_TYPES))
            }
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError.invalid_params({"details": f"{where}: data is not base64"}) from None
    return spb.Image(mime_type=mime_type, data=raw)


def context_block(uri: str, text: str) -> str:
    """An embedded resource as the model reads it (workspace content: data, not orders). A
    closing tag inside the text is broken up, so the file cannot end its own block."""
    quoted = uri.replace('"', "%22")
    body = text.rstrip().replace("</context", "<\\/context")
    return f'<context uri="{quoted}">\n{body}\n</context>'


def turn_input(blocks: Sequence[Block]) -> TurnInput:
    """The turn's text (text blocks in order, links inline, embedded files as context blocks)
    and images; audio and binary resources other than images are refused."""
    parts: list[str] = []
    out = TurnInput()
    for i, block in enumerate(blocks):
        where = f"prompt[{i}]"
        if isinstance(block, TextContentBlock):
            parts.append(block.text)
        elif isinstance(block, ImageContentBlock):
            out.images.append(_image(block.data, block.mime_type, where))
        elif isinstance(block, ResourceContentBlock):
            parts.append(f"[{block.name}]({block.uri})")
        elif isinstance(block, EmbeddedResourceContentBlock):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                parts.append(context_block(resource.uri, resource.text))
            elif isinstance(resource, BlobResourceContents):
                out.images.append(_image(resource.blob, resource.mime_type or "", where))
        else:
            raise RequestError.invalid_params(
                {"details": f"{where}: {block.type} content is not supported (no audio)"}
            )
    out.text = "\n\n".join(p for p in parts if p)
    if not out.text and not out.images:
        raise RequestError.invalid_params({"details": "the prompt is empty"})
    return out

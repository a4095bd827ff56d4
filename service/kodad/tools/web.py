"""web_fetch{url}: a page's text over HTTP(S), with a size cap and a timeout. Private,
loopback and link-local addresses are refused unless the server allows them."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import httpx

from kodad.tools.base import Args, BuiltinTool, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

MAX_BYTES = 2 * 1024 * 1024
TIMEOUT_S = 20.0
MAX_REDIRECTS = 5


class _Text(HTMLParser):
    """The visible text of an HTML page: no scripts, styles or tags; blocks on new lines."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "section",
            "article",
            "header",
            "footer",
            "table",
            "ul",
            "ol",
            "title",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)

    def text(self) -> str:
        lines = (
            re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(self.parts).split("\n")
        )
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.text()


async def check_address(url: str, allow_private: bool) -> None:
    """ToolError unless `url` is http(s) to a public address (or private ones are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError(f"only http and https URLs can be fetched, not {url!r}")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )  # fmt: skip
    except socket.gaierror as e:
        raise ToolError(f"cannot resolve {parts.hostname}: {e.strerror}") from e
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ToolError(
                f"refused: {parts.hostname} is a private, loopback or reserved address "
                f"({address}); the server does not allow fetching those"
            )


class WebFetch(BuiltinTool):
    name: ClassVar[str] = "web_fetch"
    kind: ClassVar[ToolKind] = ToolKind.MUTATING  # it reaches out of the machine: it asks
    description: ClassVar[str] = (
        "Fetch a web page (http or https) and return its text (HTML reduced to visible text)."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"url": {"type": "string"}},
        "required": ["url"],
    }

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        url = args.string("url")
        async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                await check_address(url, self.allow_private)  # every hop, redirects included
                try:
                    async with client.stream("GET", url, headers={"user-agent": "kodad"}) as r:
                        if r.is_redirect and "location" in r.headers:
                            url = urljoin(url, r.headers["location"])
                            continue
                        body = bytearray()
                        async for chunk in r.aiter_bytes():
                            body += chunk
                            if len(body) > MAX_BYTES:
                                break
                        status, content_type = r.status_code, r.headers.get("content-type", "")
                        encoding = r.encoding or "utf-8"
                        break
                except httpx.HTTPError as e:
                    raise ToolError(f"fetching {url} failed: {e}") from e
            else:
                raise ToolError(f"more than {MAX_REDIRECTS} redirects")
        text = bytes(body[:MAX_BYTES]).decode(encoding, errors="replace")
        if "html" in content_type or text.lstrip()[:1] == "<":
            text = html_text(text)
        if status >= 400:
            return ToolOutcome(f"HTTP {status} from {url}\n{text[:2000]}", is_error=True)
        outcome = ctx.cap(text)
        if len(body) > MAX_BYTES:
            return ToolOutcome(outcome.output, truncated=True)
        return outcome

    def describe(self, args: Args, workspace: Workspace) -> Description:
        url = args.string("url")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ToolError(f"only http and https URLs can be fetched, not {url!r}")
        return Description(f"Fetch {url}", url)

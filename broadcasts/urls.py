"""Agent URLs: which addresses an agent may have, and URLs shown without their credentials."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import SplitResult, urlsplit, urlunsplit

from broadcasts.errors import ValidationFailed

# Cloud instance-metadata endpoints: never an agent, whatever the settings allow.
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "metadata.azure.com"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)
SECRET_PARAM = re.compile(r"token|secret|key|password|passwd|signature|sig$|auth", re.IGNORECASE)
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # 0x7f.1, 017700000001: forms the resolver reads as IPv4 and ip_address does not
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_private(host: str) -> bool:
    address = _address(host)
    if address is None:
        return host == "localhost" or host.endswith(LOCAL_SUFFIXES) or "." not in host
    return not address.is_global or address.is_multicast


def check_agent_url(url: str, *, allow_private: bool = False) -> str:
    """The URL, stripped, if an agent may have it; else ValidationFailed saying why.

    https only, on a public address; `allow_private` (AGENT_ALLOW_PRIVATE_URLS, for the demo and
    tests) also accepts http and private, loopback and link-local addresses. Cloud metadata
    endpoints are refused always. Names are checked as written: what they resolve to is the
    sender's business at delivery time.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValidationFailed(
            f"Agent URL '{mask_credentials(url)}' is malformed ({exc}).", field="url"
        ) from None
    shown = mask_credentials(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationFailed(
            f"Agent URL '{shown}' must be an https:// address with a host.", field="url"
        )
    address = _address(host)
    if host in METADATA_HOSTS or (address is not None and address in METADATA_ADDRESSES):
        raise ValidationFailed(
            f"Agent URL '{shown}' is a cloud metadata endpoint; agents cannot live there.",
            field="url",
        )
    if allow_private:
        return url
    if parts.scheme != "https":
        raise ValidationFailed(
            f"Agent URL '{shown}' must use https:// (replies carry customers' messages). "
            "Set AGENT_ALLOW_PRIVATE_URLS=true only for local development.",
            field="url",
        )
    if _is_private(host):
        raise ValidationFailed(
            f"Agent URL '{shown}' points at a private, loopback or link-local address. "
            "Set AGENT_ALLOW_PRIVATE_URLS=true only for local development.",
            field="url",
        )
    return url


def mask_credentials(url: str | None) -> str:
    """`url` with user:password@ as ***@ and secret-looking query values (token=, key=, …) as
    *** — what may be shown of any URL: agents, API bases, database and Redis."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***@" + url.split("@")[-1] if "@" in url else url
    netloc = f"***@{parts.netloc.rsplit('@', 1)[1]}" if "@" in parts.netloc else parts.netloc
    query = "&".join(
        f"{name}=***" if SECRET_PARAM.search(name) else f"{name}={value}" if sep else name
        for name, sep, value in (p.partition("=") for p in parts.query.split("&") if p)
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide: as given (a rebuilt sqlite:/// would lose a slash)
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))

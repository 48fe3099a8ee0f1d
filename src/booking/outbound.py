"""The one policy for every request to a URL a tenant or partner supplied.

Partner webhooks use it today (registration and every delivery attempt); calendar
feeds and marketplace notifications are meant to call the same :class:`OutboundPolicy`.

* ``https`` only, unless ``BOOKING_OUTBOUND_ALLOW_HTTP`` (local development, tests).
* No credentials in the URL (``https://user:pass@host``).
* The host is resolved and every address must be public: loopback, private,
  link-local, CGNAT (100.64/10), multicast, unspecified, reserved, documentation and
  IPv4-mapped/NAT64/6to4 forms of those are refused; so are IPv4 literals in legacy
  integer/octal/hex forms (``2130706433``, ``0177.0.0.1``) after decoding them.
  ``BOOKING_OUTBOUND_ALLOW_PRIVATE`` (local development, tests, the demo) allows
  loopback and private networks. Cloud metadata names and addresses are refused always.
* Checked at registration (:meth:`OutboundPolicy.check`) and again when connecting:
  :meth:`OutboundPolicy.post` connects through a resolver that checks the addresses
  it hands to the connector, so a name that rebinds to 127.0.0.1 after registration
  is refused (DNS rebinding).
* Redirects are never followed (a 3xx is a failed attempt); the response body is never
  read, only its status; the whole request is bounded by ``timeout_seconds``.
* The outcome is a status code and a short error class (``http-500``, ``timeout``,
  ``refused-address``...), never the remote body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from booking.settings import Settings, get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[list[str]]]

METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
DEFAULT_TIMEOUT_SECONDS = 10.0


class Refused(Exception):
    """A URL or address the policy does not allow; ``error_class`` is short and stable."""

    def __init__(self, detail: str, error_class: str = "refused-address") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error_class = error_class


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error_class: str | None  # None: a 2xx answer


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4), else the address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host denotes if it is an IP literal in any form a client accepts:
    dotted, IPv6 (bracketed or not), or the legacy integer/octal/hex/short IPv4 forms."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))  # 2130706433, 0177.0.0.1, 0x7f.1
    except OSError:
        return None


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False
    allow_private: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    resolve: Resolver = field(default=system_resolve)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> OutboundPolicy:
        config = settings or get_settings()
        return cls(
            allow_http=config.outbound_allow_http, allow_private=config.outbound_allow_private
        )

    # --- checks ---------------------------------------------------------------------------

    def check_address(self, address: str | IPAddress) -> None:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        inner = _embedded_ipv4(ip)
        if ip in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
            raise Refused(f"{ip} is a cloud metadata address.")
        for candidate in {ip, inner}:
            if candidate.is_multicast or candidate.is_unspecified:
                raise Refused(f"{ip} is not a unicast address.")
            if self.allow_private and (candidate.is_loopback or candidate.is_private):
                continue
            if not candidate.is_global or candidate.is_reserved:
                raise Refused(f"{ip} is not a public address.")

    def check_url(self, url: str) -> SplitResult:
        """Everything that can be decided without DNS; an IP literal host is checked here."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise Refused("The URL cannot be parsed.", "refused-url") from exc
        allowed = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in allowed:
            raise Refused(f"The URL must use {' or '.join(allowed)}.", "refused-url")
        if parts.username is not None or parts.password is not None:
            raise Refused("The URL must not contain credentials.", "refused-url")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise Refused("The URL has no host.", "refused-url")
        if host in METADATA_NAMES:
            raise Refused(f"{host} is a cloud metadata name.")
        if not self.allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise Refused(f"{host} is a loopback name.")
        if port == 0:
            raise Refused("The URL's port must not be 0.", "refused-url")
        literal = literal_address(host)
        if literal is not None:
            self.check_address(literal)
        return parts

    async def addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and check every answer (one refused address refuses all)."""
        literal = literal_address(host)
        if literal is not None:
            self.check_address(literal)
            return [str(literal)]
        try:
            found = await self.resolve(host, port)
        except OSError as exc:
            raise Refused(f"{host} does not resolve.", "dns-error") from exc
        if not found:
            raise Refused(f"{host} does not resolve.", "dns-error")
        for address in found:
            self.check_address(address)
        return found

    async def check(self, url: str) -> None:
        """Registration check: the URL and every address its host resolves to now."""
        parts = self.check_url(url)
        host = (parts.hostname or "").rstrip(".")
        await self.addresses(host, parts.port or (443 if parts.scheme == "https" else 80))

    # --- requests -------------------------------------------------------------------------

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, method: str = "POST"
    ) -> Outcome:
        """POST (or ``method``, e.g. PATCH) ``body``; connects only to checked addresses,
        never follows a redirect and never reads the answer's body."""
        try:
            self.check_url(url)
        except Refused as exc:
            return Outcome(None, exc.error_class)
        connector = aiohttp.TCPConnector(
            resolver=_CheckingResolver(self), use_dns_cache=False, force_close=True
        )
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, timeout=timeout, trust_env=False
                ) as session,
                session.request(
                    method, url, data=body, headers=headers, allow_redirects=False
                ) as resp,
            ):
                status = resp.status
        except Refused as exc:
            return Outcome(None, exc.error_class)
        except aiohttp.ClientConnectorError as exc:
            refused = _refusal_in(exc)
            return Outcome(None, refused.error_class if refused else "connect-error")
        except TimeoutError:
            return Outcome(None, "timeout")
        except aiohttp.ClientSSLError:
            return Outcome(None, "tls-error")
        except (aiohttp.ClientError, OSError, ValueError):
            return Outcome(None, "connect-error")
        if 200 <= status < 300:
            return Outcome(status, None)
        if 300 <= status < 400:
            return Outcome(status, "redirect-not-followed")
        return Outcome(status, f"http-{status}")


def _refusal_in(exc: BaseException) -> Refused | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Refused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class _CheckingResolver(AbstractResolver):
    """aiohttp resolver: the connector connects only to addresses the policy checked."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.policy.addresses(host, port)
        results: list[ResolveResult] = []
        for address in found:
            ip = ipaddress.ip_address(address)
            results.append(
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return results

    async def close(self) -> None:
        return None

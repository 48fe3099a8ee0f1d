"""Reading a staff member's outside calendar: an ICS URL over HTTP, or a CalDAV collection.

Both go through the one outbound policy (:mod:`booking.outbound`): http(s) only, no
credentials in the URL, every address the host resolves to must be public unless the
local-development setting allows private ones. ICS requests connect only to checked
addresses (a name that rebinds to 127.0.0.1 is refused); redirects are followed by hand,
at most :data:`MAX_REDIRECTS`, and each target is checked again, so a feed that
redirects to a private address fails. Bodies are read up to :data:`MAX_BYTES`.

CalDAV uses the ``caldav`` client (blocking, run in a thread). Its URL is checked the
same way before connecting, and every connection the client opens (redirects and
discovery included) checks the address it actually reached before sending a byte: a
name that rebinds to a private address after the check is refused at connect time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp

from booking.outbound import OutboundPolicy, Refused, _CheckingResolver

MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
TIMEOUT_SECONDS = 20.0
ACCEPT = "text/calendar, application/calendar+json;q=0.1, */*;q=0.05"

# Short error classes -> what the connection's status says.
MESSAGES = {
    "refused-url": "The URL is not allowed",
    "refused-address": "The address is private, loopback or otherwise not public",
    "dns-error": "The host name does not resolve",
    "connect-error": "The server cannot be reached",
    "timeout": "The server did not answer in time",
    "tls-error": "The server's TLS certificate is not valid",
    "too-large": f"The calendar is larger than {MAX_BYTES // (1024 * 1024)} MB",
    "too-many-redirects": f"More than {MAX_REDIRECTS} redirects",
    "not-calendar": "The address does not answer with an iCalendar",
    "unreadable": "The calendar cannot be read",
    "auth": "The calendar server refused the user name or password",
}


class FetchFailed(Exception):
    def __init__(self, error_class: str, detail: str | None = None) -> None:
        message = detail or MESSAGES.get(error_class, error_class)
        super().__init__(message)
        self.error_class = error_class
        self.detail = message


@dataclass(frozen=True, slots=True)
class Fetched:
    """What the source answered: ``bodies`` (None when unchanged since ``version``)."""

    bodies: list[bytes] | None
    version: str | None  # ETag (ICS) or sync-token/ctag (CalDAV)


def normalise_url(url: str) -> str:
    """``webcal://`` (how calendar apps share a subscription) is https."""
    stripped = url.strip()
    if stripped.lower().startswith("webcal://"):
        return "https://" + stripped[len("webcal://") :]
    return stripped


async def fetch_ics(policy: OutboundPolicy, url: str, etag: str | None) -> Fetched:
    connector = aiohttp.TCPConnector(
        resolver=_CheckingResolver(policy), use_dns_cache=False, force_close=True
    )
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    headers = {"Accept": ACCEPT, "User-Agent": "booking-calendar-sync/1"}
    if etag:
        headers["If-None-Match"] = etag
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False
        ) as session:
            target = url
            for _ in range(MAX_REDIRECTS + 1):
                policy.check_url(target)
                async with session.get(target, headers=headers, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308):
                        location = resp.headers.get("Location")
                        if not location:
                            raise FetchFailed("http-" + str(resp.status))
                        target = urljoin(target, location)
                        continue
                    if resp.status == 304 and etag:
                        return Fetched(None, etag)
                    if resp.status in (401, 403):
                        raise FetchFailed("auth", f"The server answered {resp.status}")
                    if not 200 <= resp.status < 300:
                        raise FetchFailed(
                            f"http-{resp.status}", f"The server answered {resp.status}"
                        )
                    if (resp.content_length or 0) > MAX_BYTES:
                        raise FetchFailed("too-large")
                    body = await _read_bounded(resp)
                    return Fetched([body], resp.headers.get("ETag"))
            raise FetchFailed("too-many-redirects")
    except Refused as exc:
        raise FetchFailed(
            exc.error_class, f"{MESSAGES.get(exc.error_class)}: {exc.detail}"
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        refused = _refusal_in(exc)
        if refused is not None:
            raise FetchFailed(
                refused.error_class, f"{MESSAGES.get(refused.error_class)}: {refused.detail}"
            ) from exc
        raise FetchFailed("connect-error") from exc
    except TimeoutError as exc:
        raise FetchFailed("timeout") from exc
    except aiohttp.ClientSSLError as exc:
        raise FetchFailed("tls-error") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise FetchFailed("connect-error") from exc


def _refusal_in(exc: BaseException) -> Refused | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Refused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def _read_bounded(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BYTES:
            raise FetchFailed("too-large")
        chunks.append(chunk)
    return b"".join(chunks)


# ---- CalDAV ----------------------------------------------------------------------


def _checked_adapter(policy: OutboundPolicy) -> Any:
    """A ``requests`` adapter whose connections check the peer they reached against the
    outbound policy before anything is sent (the connect itself is the only packet)."""
    import requests.adapters
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def checked(sock: Any) -> Any:
        try:
            policy.check_address(sock.getpeername()[0])
        except Refused:
            sock.close()
            raise
        return sock

    class CheckedHTTP(HTTPConnection):
        def _new_conn(self) -> Any:
            return checked(super()._new_conn())

    class CheckedHTTPS(HTTPSConnection):
        def _new_conn(self) -> Any:
            return checked(super()._new_conn())

    class CheckedHTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTP

    class CheckedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPS

    class CheckedAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": CheckedHTTPPool,
                "https": CheckedHTTPSPool,
            }

    return CheckedAdapter()


def _caldav_client(
    url: str, username: str, password: str, policy: OutboundPolicy | None = None
) -> Any:
    import caldav
    import requests

    # Basic auth sent at once: some servers (Radicale without auth) never ask for it.
    auth = requests.auth.HTTPBasicAuth(username, password) if username else None
    client = caldav.DAVClient(url=url, auth=auth, timeout=int(TIMEOUT_SECONDS))
    adapter = _checked_adapter(policy or OutboundPolicy.from_settings())
    client.session.trust_env = False  # no proxy from the environment around the check
    client.session.mount("http://", adapter)
    client.session.mount("https://", adapter)
    return client


def _collection_version(calendar: Any) -> str | None:
    from caldav.elements.base import ValuedBaseElement

    class SyncToken(ValuedBaseElement):
        tag = "{DAV:}sync-token"

    class GetCtag(ValuedBaseElement):
        tag = "{http://calendarserver.org/ns/}getctag"

    props = calendar.get_properties([SyncToken(), GetCtag()])
    token = props.get(SyncToken.tag) or props.get(GetCtag.tag)
    return str(token) if token else None


def _caldav_read(
    url: str,
    username: str,
    password: str,
    version: str | None,
    policy: OutboundPolicy | None = None,
) -> Fetched:
    from caldav.lib import error

    try:
        with _caldav_client(url, username, password, policy) as client:
            calendar = client.calendar(url=url)
            current = _collection_version(calendar)
            if current is not None and current == version:
                return Fetched(None, current)
            bodies = [
                obj.data.encode() if isinstance(obj.data, str) else obj.data
                for obj in calendar.events()
            ]
            return Fetched(bodies, current)
    except Refused as exc:
        raise FetchFailed(
            exc.error_class, f"{MESSAGES.get(exc.error_class)}: {exc.detail}"
        ) from exc
    except error.AuthorizationError as exc:
        raise FetchFailed("auth") from exc
    except error.NotFoundError as exc:
        raise FetchFailed("http-404", "No calendar at this address") from exc
    except error.DAVError as exc:
        raise FetchFailed("unreadable", f"The CalDAV server refused: {exc}"[:300]) from exc
    except (OSError, ValueError) as exc:
        raise FetchFailed("connect-error") from exc


async def fetch_caldav(
    policy: OutboundPolicy, url: str, username: str, password: str, version: str | None
) -> Fetched:
    try:
        await policy.check(url)
    except Refused as exc:
        raise FetchFailed(
            exc.error_class, f"{MESSAGES.get(exc.error_class)}: {exc.detail}"
        ) from exc
    return await asyncio.to_thread(_caldav_read, url, username, password, version, policy)


def write_event(url: str, username: str, password: str, href_name: str, ics: str) -> None:
    """PUT one event at ``<collection>/<href_name>`` (overwrites: idempotent). A plain PUT,
    not ``Event.save()``, which raises SEQUENCE by one on every save (caldav 1.x), so
    the calendar's SEQUENCE stays the booking's version, as in the feed."""
    with _caldav_client(url, username, password) as client:
        target = str(client.calendar(url=url).url.join(href_name))
        response = client.put(target, ics, {"Content-Type": "text/calendar; charset=utf-8"})
        if response.status not in (200, 201, 204):
            raise FetchFailed("unreadable", f"The CalDAV server answered {response.status}")


def delete_event(url: str, username: str, password: str, href_name: str) -> None:
    """DELETE the event (already gone is fine: deleting twice is idempotent)."""
    with _caldav_client(url, username, password) as client:
        target = str(client.calendar(url=url).url.join(href_name))
        response = client.delete(target)
        if response.status not in (200, 204, 404):
            raise FetchFailed("unreadable", f"The CalDAV server answered {response.status}")

"""The network guard: which URLs may be fetched, checked on every hop and every answer.

Only http and https, and only hosts whose every address is public (an IPv4-mapped,
NAT64 or 6to4 address counts as the IPv4 address it stands for), unless the user
allowed the host or network (``[fetch] allow_private``) or configured the feed
(``trusted``). ``Fetcher`` checks each hop before connecting and the peer address of
each response after.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

import httpx

from ingestd.errors import FetchError, Refused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port)`` returns every address the name resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the OS resolver (getaddrinfo in the loop's thread pool)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _destinations(ip: IPAddress) -> tuple[IPAddress, ...]:
    """The addresses a connection to ``ip`` really reaches, all of which must be public.

    An IPv4-mapped or NAT64 (well-known prefix) address stands for its IPv4 address
    alone; a 6to4 address reaches both the IPv6 network and the IPv4 host inside it.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return (ip.ipv4_mapped,)
        if ip in _NAT64:
            return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
        if ip.sixtofour is not None:
            return (ip, ip.sixtofour)
    return (ip,)


def _is_non_public(ip: IPAddress) -> bool:
    # is_global alone misses multicast (224/4 counts as global) and some reserved ranges.
    return (
        not ip.is_global
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def is_public_address(ip: IPAddress) -> bool:
    """True unless ``ip``, or the IPv4 address it stands for, is non-public."""
    return not any(_is_non_public(a) for a in _destinations(ip))


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class NetworkGuard:
    """Refuses URLs that are not http(s) or whose host resolves to a non-public address.

    ``allow_private`` lists hostnames and CIDRs that may be private anyway. A
    ``trusted`` check (a feed the user configured) skips the address test but not the
    scheme test; ``Fetcher`` only passes ``trusted`` for hops on the trusted host.

    Residual DNS-rebinding risk: httpx resolves the name again when it connects, so a
    name can answer a public address to us and a private one to httpx. ``Fetcher``
    therefore also checks the peer address of every response (``check_peer``) and
    refuses the body; the request itself (a GET without body or credentials) has then
    already reached the private address, but its answer never leaves the fetcher.
    Closing that gap needs connecting to the checked address ourselves (an httpcore
    network backend), which httpx does not expose publicly.
    """

    def __init__(self, allow_private: Iterable[str] = (), *, resolver: Resolver | None = None):
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in allow_private:
            self._add_allowed(entry.strip())
        self._resolve = resolver or system_resolver

    def _add_allowed(self, entry: str) -> None:
        try:
            self._networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            self._hosts.add(entry.lower().rstrip("."))

    def _host_allowed(self, url: httpx.URL) -> bool:
        names = {url.host.lower().rstrip("."), url.raw_host.decode("ascii").lower().rstrip(".")}
        return not names.isdisjoint(self._hosts)

    def address_allowed(self, ip: IPAddress) -> bool:
        """True when ``ip`` is public or inside an allowed CIDR."""
        for net in self._networks:
            if all(a.version == net.version and a in net for a in _destinations(ip)):
                return True
        return is_public_address(ip)

    async def check(self, url: httpx.URL | str, *, trusted: bool = False) -> None:
        """Raise ``Refused`` unless ``url`` may be fetched; resolves the host to decide."""
        url = httpx.URL(url)
        check_scheme(url)
        if trusted or self._host_allowed(url):
            return
        for ip in await self._addresses(url):
            if not self.address_allowed(ip):
                raise Refused(
                    f"{url}: refused, {url.host} is a non-public address ({ip}); to fetch it "
                    f'anyway, add "{url.host}" to [fetch] allow_private (or, for a feed of '
                    "your own on that host, set allow_private = true in its [[feeds]] table)",
                    url=str(url),
                )

    def check_peer(self, url: httpx.URL, peer: str | None, *, trusted: bool = False) -> None:
        """Raise ``Refused`` if the address actually connected to is not allowed."""
        if peer is None or trusted or self._host_allowed(url):
            return
        ip = _parse_ip(peer)
        if ip is not None and not self.address_allowed(ip):
            raise Refused(
                f"{url}: refused, connected to non-public address {ip} "
                "(the name resolved differently when connecting)",
                url=str(url),
            )

    async def _addresses(self, url: httpx.URL) -> list[IPAddress]:
        literal = _parse_ip(url.host)
        if literal is not None:
            return [literal]
        port = url.port or (443 if url.scheme == "https" else 80)
        found = [_parse_ip(a) for a in await self._resolve(url.raw_host.decode("ascii"), port)]
        addresses = [a for a in found if a is not None]
        if not addresses:
            raise FetchError(f"{url}: could not resolve host {url.host}", url=str(url))
        # All of them, not the first: httpx may connect to any (happy eyeballs).
        return addresses


def check_scheme(url: httpx.URL) -> None:
    """Raise ``Refused`` unless ``url`` is http or https with a host."""
    if url.scheme not in ("http", "https"):
        raise Refused(f"{url}: refused, only http and https may be fetched", url=str(url))
    if not url.host:
        raise Refused(f"{url}: refused, the URL has no host", url=str(url))


def peer_address(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    if stream is None:  # a mock transport, or a transport that does not say
        return None
    addr = stream.get_extra_info("server_addr")
    return str(addr[0]) if addr else None

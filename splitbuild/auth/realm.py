"""Where credentials may be sent: canonical host:port, local registries, token realm safety.

A registry's 401 names the token service (the realm) the client then sends credentials to. A
hostile or compromised registry could point it at an internal address (cloud metadata, a service
on loopback); go-containerregistry therefore refuses realms on loopback, private, link-local and
unspecified IP literals unless the realm is on the registry's own host:port, and an ``http``
realm unless the registry itself is plain HTTP. splitbuild applies the same rule, relaxed in one
case: a registry that is itself local (loopback, ``localhost``, RFC 1918) may use a token service
on another local address, which is how test and on-premises setups are laid out.

A realm given as a host name is checked by the addresses it resolves to, the same way as an IP
literal (so ``127.1``, ``0x7f000001`` or a name in DNS pointing at 127.0.0.1 or 169.254.169.254
is an internal address); the relaxation for local registries accepts only literal local addresses
and ``localhost``.
"""

from __future__ import annotations

import functools
import ipaddress
import socket

import httpx

__all__ = [
    "canonical_address",
    "host_of",
    "is_local_registry",
    "is_rfc1918",
    "realm_allowed",
    "validate_realm",
]

_DEFAULT_PORTS = {"http": "80", "https": "443"}

_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_PRIVATE_V6 = ipaddress.ip_network("fc00::/7")
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def host_of(address: str) -> str:
    """The host part of ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 literal."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address
    if address.count(":") > 1:
        return address
    return address.partition(":")[0]


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def canonical_address(scheme: str, address: str) -> str:
    """``host:port`` with the scheme's default port filled in and IPv6 hosts bracketed.

    An address that cannot be split is returned unchanged (it then matches nothing else).
    """
    default = _DEFAULT_PORTS.get(scheme, "443")
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            return address
        host, rest = address[1:end], address[end + 1 :]
        if rest in ("", ":"):
            return f"[{host}]:{default}"
        if rest.startswith(":") and rest[1:].isdigit():
            return f"[{host}]:{rest[1:]}"
        return address
    if address.count(":") > 1:
        ip = _ip(address)
        return f"[{address}]:{default}" if isinstance(ip, ipaddress.IPv6Address) else address
    host, _, port = address.partition(":")
    if port and not port.isdigit():
        return address
    return f"{host}:{port or default}"


def is_rfc1918(registry: str) -> bool:
    ip = _ip(host_of(registry))
    return isinstance(ip, ipaddress.IPv4Address) and any(ip in net for net in _RFC1918)


def is_local_registry(registry: str) -> bool:
    """localhost, ``*.localhost``, loopback or RFC 1918 addresses (ggcr's "insecure" heuristic)."""
    host = host_of(registry).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and (ip.is_loopback or is_rfc1918(registry))


def _internal_ip(host: str) -> bool:
    ip = _ip(host)
    if ip is None:
        return False
    if (
        ip.is_loopback
        or ip.is_unspecified
        or any(ip in net for net in _LINK_LOCAL if ip.version == net.version)
    ):
        return True
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in net for net in _RFC1918)
    return ip in _PRIVATE_V6


@functools.lru_cache(maxsize=256)
def _resolves_internal(host: str) -> bool:
    """Does the host name resolve to an internal address? (Unresolvable: no, the request fails.)"""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return False
    return any(_internal_ip(str(info[4][0]).split("%")[0]) for info in infos)


def _internal_host(host: str) -> bool:
    return _internal_ip(host) if _ip(host) is not None else _resolves_internal(host.lower().rstrip("."))


def validate_realm(realm: str, registry_host: str, insecure: bool) -> bool:
    """go-containerregistry's rule, with host names checked after resolution: see the module docstring."""
    try:
        url = httpx.URL(realm)
    except httpx.InvalidURL:
        return False
    if url.scheme not in ("http", "https") or not url.host:
        return False
    if url.scheme == "http" and not insecure:
        return False
    realm_address = canonical_address(url.scheme, url.netloc.decode("ascii"))
    if registry_host and realm_address == canonical_address(url.scheme, registry_host):
        return True
    return not _internal_host(url.host)


def realm_allowed(realm: str, registry_host: str, insecure: bool) -> bool:
    """:func:`validate_realm`, plus: a local registry may name a token service on a local address."""
    if validate_realm(realm, registry_host, insecure):
        return True
    if not is_local_registry(registry_host):
        return False
    try:
        url = httpx.URL(realm)
    except httpx.InvalidURL:
        return False
    if url.scheme == "http" and not insecure:
        return False
    return url.scheme in ("http", "https") and is_local_registry(url.netloc.decode("ascii"))

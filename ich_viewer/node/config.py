"""Who the node is and whom it talks to: plain values, parsed once, checked early."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 11112
DEFAULT_AE_TITLE = "ICHVIEWER"
DEFAULT_QUIET_S = 5.0
LOOPBACK = ("127.0.0.1", "::1")


class ConfigError(ValueError):
    """A setting that cannot work (bad AE title, port, peer); the message says which."""


def check_ae_title(title: str) -> str:
    """An AE title is 1-16 characters of printable ASCII without backslash (PS3.5 AE VR)."""
    title = title.strip()
    if not title or len(title) > 16 or any(c == "\\" or not (32 <= ord(c) < 127) for c in title):
        raise ConfigError(f"invalid AE title {title!r}: 1-16 printable ASCII characters, no backslash")
    return title


def _addresses(host: str) -> frozenset[str]:
    """Every IP address a host name stands for (so 'localhost' allows 127.0.0.1 and ::1)."""
    try:
        return frozenset({str(ipaddress.ip_address(host))})
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve host {host!r} of an allowed peer: {exc}") from exc
    return frozenset(str(info[4][0]) for info in infos)


@dataclass(frozen=True)
class AllowRule:
    """``AE@HOST`` (``*`` for any AE title; no ``@HOST``: from any host)."""

    ae_title: str
    host: str | None
    addresses: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> "AllowRule":
        ae, _, host = text.partition("@")
        ae = ae.strip()
        title = "*" if ae == "*" else check_ae_title(ae)
        if not host:
            return cls(title, None)
        return cls(title, host, _addresses(host))

    def allows(self, calling_ae: str, address: str) -> bool:
        if self.ae_title != "*" and calling_ae.strip() != self.ae_title:
            return False
        return self.host is None or address in self.addresses


@dataclass(frozen=True)
class Peer:
    """A remote node: ``AE@HOST:PORT``."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Peer":
        ae, at, rest = text.partition("@")
        host, colon, port = rest.rpartition(":")
        if not at or not colon or not host:
            raise ConfigError(f"peer {text!r} must be AE@HOST:PORT")
        try:
            number = int(port)
        except ValueError:
            raise ConfigError(f"peer {text!r}: port {port!r} is not a number") from None
        if not 0 < number < 65536:
            raise ConfigError(f"peer {text!r}: port out of range")
        return cls(check_ae_title(ae), host, number)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class NodeConfig:
    """Everything ``ich-viewer serve`` and the window's node toggle share."""

    data_dir: Path
    port: int = DEFAULT_PORT
    ae_title: str = DEFAULT_AE_TITLE
    bind: str = ""
    """Address to listen on; "" means every interface."""
    allow: tuple[AllowRule, ...] = ()
    """Empty: any AE title, but only from this machine (loopback)."""
    quiet_s: float = DEFAULT_QUIET_S
    """A study is complete once nothing arrived for it for this long."""
    store_non_image: bool = True
    """Store SR, KOS, presentation states...; False refuses them (status 0x0122)."""
    send_to: Peer | None = None
    """Send the SR and key images here after each analysis (None: do not)."""
    peers: dict[str, Peer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ae_title(self.ae_title)
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port {self.port} out of range")
        if self.quiet_s < 0:
            raise ConfigError("quiet time must not be negative")

    def allows(self, calling_ae: str, address: str) -> bool:
        """Whether an association from this AE title and address may go ahead."""
        if not self.allow:
            return address in LOOPBACK or address.startswith("127.") or address == "::ffff:127.0.0.1"
        return any(rule.allows(calling_ae, address) for rule in self.allow)

    @property
    def node_dir(self) -> Path:
        return Path(self.data_dir) / "node"

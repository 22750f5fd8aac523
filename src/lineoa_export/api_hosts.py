"""Where a channel's bearer token may be sent: the one check of an authentication's ``api_url``.

A token goes wherever ``api_url`` points, so ``api_url`` is held to LINE's own API hosts
(:data:`LINE_API_HOSTS`, HTTPS only, no path). Any other host (the simulator, a test
double, a forward proxy) is refused unless the operator names it in
``LINEOA_EXPORT_ALLOWED_API_HOSTS`` (comma-separated host names or IP addresses; any port
and scheme http or https on them). What no URL may carry, allowed host or not: user
info (``user:pw@``), a query or a fragment (a ``#`` would cut our request path off), a
host that is not a valid DNS name or IP address (``a..b``), characters outside printable
ASCII.

The rule a reader must not break here: every path by which a token can leave the
process checks its URL with :meth:`ApiHosts.check` (new input) or
:meth:`ApiHosts.check_stored` (an authentication saved under an older policy).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ApiUrlNotAllowed, InvalidInput

LINE_API_HOSTS = frozenset({"api.line.me", "api-data.line.me"})
ALLOWED_HOSTS_VARIABLE = "LINEOA_EXPORT_ALLOWED_API_HOSTS"
MAX_URL_LENGTH = 2000
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PATH = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?$")


def normalise_host(text: str) -> str | None:
    """A host name (lower case) or IP address (canonical form), or None when ``text`` is neither."""
    host = text.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.removesuffix(".")
    labels = name.split(".")
    if not name.isascii() or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None  # "127.1" or "1.2.3.999": not an address Python agrees on, so not one we allow
    return name


def parse_allowed_hosts(entries: Iterable[str]) -> frozenset[str]:
    """The operator's extra hosts; raises ValueError naming the first entry that is not a host."""
    hosts: set[str] = set()
    for entry in entries:
        if not entry.strip():
            continue
        host = normalise_host(entry)
        if host is None:
            raise ValueError(
                f"{entry.strip()!r} is not a host name or IP address (give hosts without scheme or port; "
                "any port on an allowed host is allowed)"
            )
        hosts.add(host)
    return frozenset(hosts)


@dataclass(frozen=True, slots=True)
class ApiHosts:
    """LINE's API hosts plus the operator's ``extra`` ones."""

    extra: frozenset[str] = frozenset()

    def allows(self, host: str) -> bool:
        return host in LINE_API_HOSTS or host in self.extra

    def with_hosts(self, *hosts: str) -> ApiHosts:
        return ApiHosts(self.extra | parse_allowed_hosts(hosts))

    def check(self, api_url: str) -> str:
        """``api_url`` without a trailing slash; :class:`InvalidInput` on ``api_url`` when it may not be used."""
        problem = self.problem(api_url)
        if problem:
            raise InvalidInput.single("api_url", problem)
        return api_url.rstrip("/")

    def check_stored(self, api_url: str) -> None:
        """For a saved authentication: :class:`ApiUrlNotAllowed` naming the setting that would allow it."""
        problem = self.problem(api_url)
        if problem:
            raise ApiUrlNotAllowed(f"api_url {_shown(api_url)}: {problem}")

    def problem(self, api_url: str) -> str | None:
        """Why ``api_url`` may not be used, or None when it may."""
        if not (api_url.isascii() and api_url.isprintable() and " " not in api_url and len(api_url) <= MAX_URL_LENGTH):
            return f"must be an http(s) URL of printable ASCII without spaces, at most {MAX_URL_LENGTH} characters"
        try:
            parts = urlsplit(api_url)
        except ValueError:  # e.g. an unclosed "[" of an IPv6 address
            return "is not a URL that can be read (check the brackets around an IPv6 address)"
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "must be an http:// or https:// URL, e.g. https://api.line.me"
        if "@" in parts.netloc:
            return "must not contain a user name or password (user:pw@)"
        if parts.query or parts.fragment or "?" in api_url or "#" in api_url:
            return "must not contain a query (?) or fragment (#)"
        if not _PATH.match(parts.path) or "/../" in parts.path + "/" or "/./" in parts.path + "/":
            return "has a path that cannot be used as a base URL"
        return self._host_problem(parts.scheme, parts.netloc, parts.path)

    def _host_problem(self, scheme: str, netloc: str, path: str) -> str | None:
        try:
            port = urlsplit(f"//{netloc}").port
        except ValueError:
            return "has a port that is not a number from 0 to 65535"
        bare = netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc
        host = normalise_host(bare)
        if host is None:
            return f"host {bare!r} is not a valid host name or IP address"
        if host in LINE_API_HOSTS:
            if scheme != "https" or path.strip("/") or port not in (None, 443):
                return f"LINE's API is https://{host} (HTTPS, no port or path)"
            return None
        if host not in self.extra:
            return (
                f"host {host!r} is not one of LINE's API hosts ({', '.join(sorted(LINE_API_HOSTS))}); "
                f"to send tokens there, the operator adds it to {ALLOWED_HOSTS_VARIABLE}"
            )
        return None


def _shown(api_url: str) -> str:
    """The URL for a message: printable, short, and never a password someone pasted into it."""
    try:
        parts = urlsplit(api_url) if api_url.isascii() and api_url.isprintable() else None
    except ValueError:
        parts = None
    if parts is None:
        return repr(api_url[:80])
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}{parts.path}"[:200]

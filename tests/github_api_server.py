"""A fake GHCR on loopback: the GitHub Packages REST API for container packages, plus a registry front.

One HTTP server answers both:

* ``/v2/...``: the registry API, proxied to a real distribution registry (``backend``), except
  that ``DELETE`` is refused with 405, as GHCR does;
* the package-version endpoints of the GitHub REST API, as github/rest-api-description describes
  them (tests/api_descriptions/github-packages.json): listing (paginated, ``Link`` header, newest
  first) and deleting versions. Every manifest in the backend repository is a version (``name``:
  its digest; ``metadata.container.tags``: the tags on it). Deleting a version really deletes the
  manifest from the backend (its own ``DELETE``, enabled there), with its tags.

Every request and response is checked against that description; what does not conform is
appended to ``violations`` (tests assert it stays empty). Tokens carry scopes (``tokens``);
``downloads`` and ``public`` model the 5,000-download rule; the primary limit
(``primary_remaining``) and the secondary one (``points_per_minute``: GET 1 point, DELETE 5, as
GitHub documents, in windows of ``60 / time_scale`` seconds) answer 403 with the documented headers.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import httpx
import jsonschema  # type: ignore[import-untyped]

from tests.registry_server import RegistryServer, free_port

DESCRIPTIONS = Path(__file__).parent / "api_descriptions"
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def load_description(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DESCRIPTIONS / name).read_text())
    return doc


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z_]+\})", path)
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


def headers_out(headers: dict[str, str]) -> set[str]:
    return {k.lower() for k in headers}


class Described:
    """Matches requests to the operations of a trimmed description and validates them."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.doc = description
        self.violations: list[str] = []
        self.routes = [
            (name, op, _template(path))
            for name, op in description["operations"].items()
            for path in op["paths"]
        ]

    def _validate(self, instance: object, schema: dict[str, Any], where: str) -> None:
        resolver_doc = {"schemas": self.doc["schemas"], **schema}
        try:
            jsonschema.validate(instance, resolver_doc)
        except jsonschema.ValidationError as exc:
            self.violations.append(f"{where}: {exc.message}")

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for name, op, pattern in self.routes:
            m = pattern.match(path)
            if m and op["method"] == method:
                return name, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def check_request(
        self, name: str, params: dict[str, str], query: dict[str, list[str]], body: object
    ) -> None:
        op = self.doc["operations"][name]
        for key, value in params.items():
            schema = self.doc["path_parameters"].get(key)
            if schema is not None:
                self._validate(value, schema, f"{name} path parameter {key}")
        for key, values in query.items():
            schema = op["query"].get(key)
            if schema is None:
                self.violations.append(f"{name}: undocumented query parameter {key}")
                continue
            given: object = values[-1]
            if schema.get("type") == "integer" and values[-1].isdigit():
                given = int(values[-1])
            self._validate(given, schema, f"{name} query {key}")
        if "request" in op:
            self._validate(body, op["request"], f"{name} request body")

    def check_response(self, name: str, status: int, body: object) -> None:
        responses = self.doc["operations"][name]["responses"]
        if str(status) not in responses:
            self.violations.append(f"{name}: undocumented status {status}")
            return
        schema = responses[str(status)]
        if schema is not None:
            self._validate(body, schema, f"{name} {status} response")


@dataclass
class VersionInfo:
    id: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ApiFront:
    """One loopback HTTP server: ``/v2/...`` proxied to ``backend`` (``DELETE`` refused with 405),
    everything else to :meth:`handle_api`."""

    backend: RegistryServer
    port: int
    _http: httpx.Client
    _server: ThreadingHTTPServer | None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def is_api(self, path: str) -> bool:
        return not path.startswith("/v2/")

    def handle_api(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def handle_registry(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "DELETE":
            doc = {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}
            return 405, {"Content-Type": "application/json"}, json.dumps(doc).encode()
        forward = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        response = self._http.request(method, target, headers=forward, content=body or None)
        out = {k: v for k, v in response.headers.items() if k.lower() not in _HOP}
        if method == "HEAD" and "content-length" in response.headers:
            out["Content-Length"] = response.headers["content-length"]
        return response.status_code, out, response.content

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not fake.is_api(self.path):
                    headers["host"] = fake.host
                    status, out, content = fake.handle_registry(self.command, self.path, headers, body)
                else:
                    status, out, content = fake.handle_api(self.command, self.path, headers, body)
                    out.setdefault("Content-Type", "application/json; charset=utf-8")
                self.send_response(status)
                for key, value in out.items():
                    self.send_header(key, value)
                if self.command == "HEAD" and "content-length" in headers_out(out):
                    pass
                else:
                    self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._http.close()


@dataclass
class FakeGitHub(ApiFront):
    """The server; ``packages`` maps ``(owner, package)`` to the backend repository name."""

    backend: RegistryServer
    owners: dict[str, str] = field(default_factory=dict)
    """Owner to ``orgs`` or ``users``."""
    tokens: dict[str, set[str]] = field(default_factory=dict)
    public: bool = False
    downloads: dict[str, int] = field(default_factory=dict)
    """Digest to download count."""
    times: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    """Digest to (created_at, updated_at) to report; by default the time it was first seen."""
    primary_remaining: int = 5000
    primary_reset_in: float = 3600.0
    points_per_minute: int | None = None
    time_scale: float = 1.0
    fail_next: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    """Canned answers for the next API requests: (status, headers, message)."""
    log: list[tuple[str, str, int]] = field(default_factory=list)
    """(method, path, status) of every API request."""
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.api = Described(load_description("github-packages.json"))
        self.versions: dict[tuple[str, str], dict[str, VersionInfo]] = {}
        self._ids = itertools.count(1000)
        self._rows: dict[tuple[str, str], list[tuple[str, list[str], VersionInfo]]] = {}
        self._lock = threading.Lock()
        self._window_start = time.monotonic()
        self._window_points = 0
        self._http = httpx.Client(base_url=self.backend.url, timeout=30.0)
        self._server: ThreadingHTTPServer | None = None

    @property
    def violations(self) -> list[str]:
        return self.api.violations

    # -- state -------------------------------------------------------------------------------------

    def _storage(self, repository: str) -> Path:
        return self.backend.root / "data/docker/registry/v2/repositories" / repository / "_manifests"

    def _manifests(self, repository: str) -> dict[str, list[str]]:
        """Digest to tags, from the backend's storage (every manifest revision is a version)."""
        base = self._storage(repository)
        found: dict[str, list[str]] = {}
        revisions = base / "revisions"
        for algorithm in sorted(revisions.iterdir()) if revisions.is_dir() else []:
            for entry in sorted(algorithm.iterdir()):
                if (entry / "link").exists():
                    found[f"{algorithm.name}:{entry.name}"] = []
        tags = base / "tags"
        for tag in sorted(tags.iterdir()) if tags.is_dir() else []:
            link = tag / "current" / "link"
            if link.exists():
                digest = link.read_text().strip()
                found.setdefault(digest, []).append(tag.name)
        return found

    def _current(self, owner: str, package: str) -> list[tuple[str, list[str], VersionInfo]]:
        manifests = self._manifests(f"{owner}/{package}")
        known = self.versions.setdefault((owner, package), {})
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for digest in manifests:
            if digest not in known:
                created, updated = self.times.get(digest, (now, now))
                known[digest] = VersionInfo(next(self._ids), created, updated)
        for digest in list(known):
            if digest not in manifests:
                del known[digest]
        rows = [(d, manifests[d], known[d]) for d in manifests]
        rows.sort(key=lambda r: (r[2].created_at, r[2].id), reverse=True)
        return rows

    def _version_doc(
        self, kind: str, owner: str, package: str, row: tuple[str, list[str], VersionInfo]
    ) -> Any:
        digest, tags, info = row
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        api = f"{self.url}/{kind}/{owner}/packages/container/{quote(package, safe='')}/versions/{info.id}"
        return {
            "id": info.id,
            "name": digest,
            "url": api,
            "package_html_url": f"https://github.com/{owner}/packages/container/package/{package}",
            "html_url": f"https://github.com/{owner}/packages/container/{package}/{info.id}",
            "created_at": info.created_at.strftime(stamp),
            "updated_at": info.updated_at.strftime(stamp),
            "metadata": {"package_type": "container", "container": {"tags": sorted(tags)}},
        }

    # -- limits ------------------------------------------------------------------------------------

    def _limited(self, method: str) -> tuple[int, dict[str, str], str] | None:
        if self.fail_next:
            return self.fail_next.pop(0)
        reset = str(int(time.time() + self.primary_reset_in))
        if self.primary_remaining <= 0:
            return (
                403,
                {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset, "x-ratelimit-limit": "5000"},
                "API rate limit exceeded for user ID 1.",
            )
        self.primary_remaining -= 1
        if self.points_per_minute is not None:
            window = 60.0 / self.time_scale
            now = time.monotonic()
            if now - self._window_start >= window:
                self._window_start, self._window_points = now, 0
            cost = 5 if method == "DELETE" else 1
            if self._window_points + cost > self.points_per_minute:
                wait = max(1, math.ceil(self._window_start + window - now))
                return (
                    403,
                    {"Retry-After": str(wait)},
                    "You have exceeded a secondary rate limit. "
                    "Please wait a few minutes before you try again.",
                )
            self._window_points += cost
        return None

    # -- handling ----------------------------------------------------------------------------------

    def handle_api(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        query = parse_qs(split.query)
        matched = self.api.match(method, split.path)
        if matched is None:
            self.api.violations.append(f"undocumented request {method} {split.path}")
            return 404, {}, json.dumps({"message": "Not Found"}).encode()
        name, params = matched
        self.api.check_request(name, params, query, None)
        status, extra, body = self._answer(name, method, params, query, headers)
        self.log.append((method, split.path, status))
        self.api.check_response(name, status, json.loads(body) if body else None)
        extra.setdefault("x-ratelimit-remaining", str(max(self.primary_remaining, 0)))
        extra.setdefault("x-ratelimit-reset", str(int(time.time() + self.primary_reset_in)))
        return status, extra, body

    def _error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        doc = {"message": message, "documentation_url": "https://docs.github.com/rest/packages/packages"}
        return status, dict(headers or {}), json.dumps(doc).encode()

    def _answer(
        self,
        name: str,
        method: str,
        params: dict[str, str],
        query: dict[str, list[str]],
        headers: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if token is None or token not in self.tokens:
            return self._error(401, "Bad credentials")
        scopes = self.tokens[token]
        scope_header = {"X-OAuth-Scopes": ", ".join(sorted(scopes))}
        with self._lock:
            limited = self._limited(method)
            if limited is not None:
                return self._error(limited[0], limited[2], limited[1])
            kind = "orgs" if "org" in params else "users"
            owner = params.get("org") or params.get("username") or ""
            package = params["package_name"]
            if self.owners.get(owner) != kind or not self._storage(f"{owner}/{package}").is_dir():
                return self._error(404, "Package not found.")
            if "read:packages" not in scopes:
                return self._error(
                    403, "You need at least read:packages scope to list packages.", scope_header
                )
            # The storage is read afresh for a first page (pushes happen behind the fake's back);
            # later pages and deletes use that reading, kept up to date by the deletes.
            first = name == "list-versions" and query.get("page", ["1"])[-1] == "1"
            if first or (owner, package) not in self._rows:
                self._rows[(owner, package)] = self._current(owner, package)
            rows = self._rows[(owner, package)]
            if name == "list-versions":
                page = int(query.get("page", ["1"])[-1])
                per_page = min(int(query.get("per_page", ["30"])[-1]), 100)
                chunk = rows[(page - 1) * per_page : page * per_page]
                body = [self._version_doc(kind, owner, package, r) for r in chunk]
                links = []
                base = f"{self.url}/{kind}/{owner}/packages/container/{quote(package, safe='')}/versions"
                last = max(1, math.ceil(len(rows) / per_page))
                if page < last:
                    links.append(
                        f'<{base}?{urlencode({"per_page": per_page, "page": page + 1})}>; rel="next"'
                    )
                    links.append(f'<{base}?{urlencode({"per_page": per_page, "page": last})}>; rel="last"')
                out = {"Link": ", ".join(links)} if links else {}
                return 200, out, json.dumps(body).encode()
            if "delete:packages" not in scopes:
                return self._error(
                    403, "You need the delete:packages scope to delete package versions.", scope_header
                )
            wanted = int(params["package_version_id"])
            row = next((r for r in rows if r[2].id == wanted), None)
            if row is None:
                return self._error(404, "Package version not found.")
            if self.public and self.downloads.get(row[0], 0) > 5000:
                return self._error(
                    403,
                    "Publicly visible package versions with more than 5000 downloads cannot be deleted. "
                    "Contact GitHub support for further assistance.",
                )
            response = self._http.delete(f"/v2/{owner}/{package}/manifests/{row[0]}")
            if response.status_code != 202:
                raise RuntimeError(f"backend refused the delete: {response.status_code} {response.text}")
            rows.remove(row)
            return 204, {}, b""

"""A fake Docker Hub on loopback: the Hub API endpoints the provider uses, plus a registry front.

``/v2/auth/token``, the repository tag listing (``page``/``page_size``, ``next`` links) and the tag
``DELETE`` (see tests/api_descriptions/README.md), checked against the trimmed description in
tests/api_descriptions/docker-hub.json; the images live in a real distribution registry
(``backend``) whose registry API is proxied. Deleting a tag removes it from the backend's storage;
the manifest stays (untagged), as on Hub.

The registry API's ``DELETE /v2/{name}/manifests/{reference}`` answers as Docker's registry API
reference for Hub says (tests/api_descriptions/docker-hub-registry.json): 405 for a tag (digests
only), 403 while a tag, an index's ``manifests`` or a referrer's ``subject`` in the repository
still references the manifest, else the backend deletes it (202). Every other ``DELETE`` is 405.

``pushed`` sets a tag's ``tag_last_pushed``; ``fail_next`` injects Hub API answers (a 429 with
``Retry-After``); ``fail_registry_next`` registry ``DELETE`` answers (a 500 deletes in the
background, as the reference says, and answers 500).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.github_api_server import ApiFront, Described, load_description
from tests.registry_server import RegistryServer, free_port


@dataclass
class FakeHub(ApiFront):
    backend: RegistryServer
    users: dict[str, str] = field(default_factory=dict)
    """Username to personal access token."""
    pushed: dict[str, dt.datetime] = field(default_factory=dict)
    """Tag to ``tag_last_pushed``."""
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    fail_registry_next: list[int] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.api = Described(load_description("docker-hub.json"))
        self.registry_api = Described(load_description("docker-hub-registry.json"))
        self.tokens: dict[str, str] = {}
        self._http = httpx.Client(base_url=self.backend.url, timeout=30.0)
        self._server = None

    @property
    def violations(self) -> list[str]:
        return self.api.violations + self.registry_api.violations

    def is_api(self, path: str) -> bool:
        return path.startswith(("/v2/auth/", "/v2/namespaces/", "/v2/repositories/"))

    def _storage(self, repository: str) -> Path:
        return self.backend.root / "data/docker/registry/v2/repositories" / repository

    def _references(self, repository: str, digest: str) -> list[str]:
        """What in ``repository`` still references ``digest``: tags, indexes listing it, referrers."""
        found = [f"tag {tag}" for tag, target in self._tags(repository) if target == digest]
        revisions = self._storage(repository) / "_manifests/revisions/sha256"
        blobs = self.backend.root / "data/docker/registry/v2/blobs/sha256"
        for entry in sorted(revisions.iterdir()) if revisions.is_dir() else []:
            if not (entry / "link").exists() or f"sha256:{entry.name}" == digest:
                continue
            try:
                doc = json.loads((blobs / entry.name[:2] / entry.name / "data").read_bytes())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict):
                continue
            listed = [m.get("digest") for m in doc.get("manifests") or [] if isinstance(m, dict)]
            subject = doc.get("subject")
            if digest in listed:
                found.append(f"index sha256:{entry.name}")
            elif isinstance(subject, dict) and subject.get("digest") == digest:
                found.append(f"referrer sha256:{entry.name}")
        return found

    def handle_registry(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        matched = self.registry_api.match(method, split.path) if method == "DELETE" else None
        if matched is None:
            return super().handle_registry(method, target, headers, body)
        name, params = matched
        self.registry_api.check_request(name, params, parse_qs(split.query), None)
        status = self._delete_manifest(f"{params['namespace']}/{params['repository']}", params["reference"])
        self.log.append((method, split.path, status))
        self.registry_api.check_response(name, status, None)
        codes = {403: "DENIED", 404: "MANIFEST_UNKNOWN", 405: "UNSUPPORTED", 500: "UNKNOWN"}
        if status not in codes:
            return status, {}, b""
        doc = {"errors": [{"code": codes[status], "message": "manifest deletion refused"}]}
        return status, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    def _delete_manifest(self, repository: str, reference: str) -> int:
        if re.fullmatch(r"sha256:[0-9a-f]{64}", reference) is None:
            return 405  # "Only digest-based deletion is allowed."
        if self._references(repository, reference):
            return 403  # "The manifest may still be referenced."
        injected = self.fail_registry_next.pop(0) if self.fail_registry_next else None
        if injected is not None and injected != 500:
            return injected
        answer = self._http.delete(f"/v2/{repository}/manifests/{reference}")
        if answer.status_code == 404:
            return 404
        if answer.status_code != 202:
            raise AssertionError(f"the backend answered {answer.status_code} to a manifest DELETE")
        return 500 if injected == 500 else 202  # a 500: "the system will retry in the background"

    def _tags(self, repository: str) -> list[tuple[str, str]]:
        base = self.backend.root / "data/docker/registry/v2/repositories" / repository / "_manifests/tags"
        found = []
        for tag in sorted(base.iterdir()) if base.is_dir() else []:
            link = tag / "current" / "link"
            if link.exists():
                found.append((tag.name, link.read_text().strip()))
        return found

    def handle_api(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        query = parse_qs(split.query)
        matched = self.api.match(method, split.path)
        if matched is None:
            self.api.violations.append(f"undocumented request {method} {split.path}")
            return 404, {}, json.dumps({"message": "not found"}).encode()
        name, params = matched
        document: object = None
        if body:
            try:
                document = json.loads(body)
            except ValueError:
                self.api.violations.append(f"{name}: request body is not JSON")
        self.api.check_request(name, params, query, document)
        status, extra, content = self._answer(name, params, query, headers, document)
        self.log.append((method, split.path, status))
        self.api.check_response(name, status, json.loads(content) if content else None)
        return status, extra, content

    def _answer(
        self,
        name: str,
        params: dict[str, str],
        query: dict[str, list[str]],
        headers: dict[str, str],
        document: Any,
    ) -> tuple[int, dict[str, str], bytes]:
        if self.fail_next and name != "auth-token":  # the reference gives the login no 429
            status, extra = self.fail_next.pop(0)
            return status, extra, json.dumps({"detail": "too many requests"}).encode()
        if name == "auth-token":
            user = document.get("identifier") if isinstance(document, dict) else None
            secret = document.get("secret") if isinstance(document, dict) else None
            if not isinstance(user, str) or self.users.get(user) != secret:
                return 401, {}, json.dumps({"detail": "Incorrect authentication credentials"}).encode()
            token = secrets.token_urlsafe(16)
            self.tokens[token] = user
            return 200, {}, json.dumps({"access_token": token}).encode()
        auth = headers.get("authorization", "")
        user = self.tokens.get(auth[len("Bearer ") :]) if auth.startswith("Bearer ") else None
        if user is None:
            return (
                401 if name == "delete-tag" else 403,
                {},
                json.dumps({"detail": "authentication required"}).encode(),
            )
        repository = f"{params['namespace']}/{params['repository']}"
        tags = self._tags(repository)
        if name == "list-tags":
            page = int(query.get("page", ["1"])[-1])
            size = int(query.get("page_size", ["10"])[-1])
            chunk = tags[(page - 1) * size : page * size]
            base = f"{self.url}/v2/namespaces/{params['namespace']}/repositories/{params['repository']}/tags"
            last = max(1, math.ceil(len(tags) / size))
            now = dt.datetime.now(dt.UTC)
            results = []
            for tag, digest in chunk:
                when = self.pushed.get(tag, now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                results.append(
                    {
                        "name": tag,
                        "images": {"digest": digest, "status": "active"},
                        "last_updated": when,
                        "tag_last_pushed": when,
                        "status": "active",
                        "v2": "true",
                    }
                )
            doc = {
                "count": len(tags),
                "next": f"{base}?{urlencode({'page': page + 1, 'page_size': size})}" if page < last else None,
                "previous": f"{base}?{urlencode({'page': page - 1, 'page_size': size})}"
                if page > 1
                else None,
                "results": results,
            }
            return 200, {}, json.dumps(doc).encode()
        tag = params["tag"]
        if tag not in dict(tags):
            return 404, {}, json.dumps({"message": "tag not found"}).encode()
        base = self.backend.root / "data/docker/registry/v2/repositories" / repository / "_manifests/tags"
        shutil.rmtree(base / tag)
        return 204, {}, b""

"""A minimal Hugging Face Hub on loopback, for tests that drive the real `huggingface_hub` client.

It implements only what `HfApi.create_repo`, `repo_info`/`dataset_info`, `create_commit` (validate-yaml,
preupload, NDJSON commit with base64 "regular" files and deletes, `parentCommit`), `list_repo_tree`,
`get_paths_info`, `create_tag`, `list_repo_refs`, `list_repo_commits`, `hf_hub_download` and
`datasets.load_dataset(repo_id)` (through `HfFileSystem`) call. Every file is declared "regular", so the
client never goes to LFS or Xet storage, which a loopback server cannot provide.

Repos live in memory as a list of commits, each a full snapshot {path: bytes}; branches and tags point
at commit ids, so any revision stays readable. Requests need `Authorization: Bearer <token>`: the write
token may do anything, the read token only reads (403 on writes), anything else gets 401. Nothing is
logged: the request log keeps method and path only, never headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# The tokens the server of conftest's `hub` fixture knows: write and read, new in every test session.
TOKEN = "hf_test_" + os.urandom(12).hex()
READ_TOKEN = "hf_read_" + os.urandom(12).hex()

GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
DATE = "2026-01-01T00:00:00.000Z"
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
# /api/{type}s/{namespace}/{name}[/{action}[/{revision}[/{path}]]]; revision is quoted with safe="".
API_ROUTE = re.compile(
    r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/([a-z-]+)(?:/([^/]+)(?:/(.*))?)?)?$"
)
RESOLVE_ROUTE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")

LOAD = """
import datasets, json, sys
repo, revisions = sys.argv[1], sys.argv[2:]
print(json.dumps({
    rev: {cfg: {s: len(d) for s, d in datasets.load_dataset(repo, cfg, revision=rev).items()}
          for cfg in ("default", "act", "states", "preference")}
    for rev in revisions
}))
"""


def load_counts(endpoint: str, token: str, home: Path, repo_id: str, *revisions: str) -> tuple[dict, str]:
    """Rows per revision, config and split, as `datasets.load_dataset(repo_id)` reads them in a fresh
    process configured the way a user would (HF_ENDPOINT, HF_TOKEN); also everything it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env |= {
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": token,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    command = [sys.executable, "-c", LOAD, repo_id, *revisions]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout + proc.stderr


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which is what the Hub reports as a regular file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, bytes]


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: list[Commit] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """A branch, a tag or a full commit id -> that commit."""
        oid = self.branches.get(revision) or self.tags.get(revision) or revision
        return next((c for c in self.commits if c.oid == oid), None)


class HubError(Exception):
    """An HTTP error answer, with the headers the client maps to its error classes."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubServer:
    """The server, its in-memory repos and a request log; use as a context manager."""

    def __init__(self, token: str, read_token: str | None = None) -> None:
        self.token, self.read_token = token, read_token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.races: dict[str, dict[str, bytes]] = {}
        self.faults: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Inspection helpers for tests.
    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def commit_count(self, repo_id: str, repo_type: str = "dataset") -> int:
        key = (repo_type, repo_id)
        return len(self.repos[key].commits) if key in self.repos else 0

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        commit = self.repo(repo_id, repo_type).resolve(revision)
        assert commit is not None, f"no revision {revision}"
        return dict(commit.files)

    def commit_files(self, repo_id: str, files: dict[str, bytes], title: str = "direct") -> str:
        """Commit straight to main, bypassing HTTP: simulates someone else pushing concurrently."""
        with self.lock:
            repo = self.repo(repo_id)
            head = repo.resolve("main")
            assert head is not None
            return self._commit(repo, "main", {**head.files, **files}, title)

    def race(self, repo_id: str, files: dict[str, bytes]) -> None:
        """Let someone else commit `files` to main just before the next commit request on `repo_id`."""
        self.races[repo_id] = files

    def fail_next(self, path_part: str, how: str, times: int = 1) -> None:
        """Make the next `times` requests whose path contains `path_part` fail in transfer: "garble"
        answers 200 with a body that is not JSON (no work done); "lose_reply" does the work, then
        closes the connection without answering."""
        assert how in ("garble", "lose_reply"), how
        self.faults += [(path_part, how)] * times

    def _fault(self, path: str) -> str | None:
        with self.lock:
            for index, (part, how) in enumerate(self.faults):
                if part in path:
                    del self.faults[index]
                    return how
        return None

    # Internals.
    def _new_oid(self, *parts: str) -> str:
        self._counter += 1
        return hashlib.sha1("\0".join([str(self._counter), *parts]).encode()).hexdigest()

    def _commit(self, repo: Repo, branch: str, files: dict[str, bytes], title: str) -> str:
        parent = repo.branches.get(branch)
        commit = Commit(self._new_oid(repo.repo_id, branch, title), parent, title, files)
        repo.commits.append(commit)
        repo.branches[branch] = commit.oid
        return commit.oid


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    hub_reply_lost = False
    server_version = "loopback-hub/0.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib access log (it goes to stderr); requests are recorded without headers."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # Plumbing.
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False
    ) -> None:
        if self.hub_reply_lost:
            return
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode())

    def _error(self, err: HubError, head: bool = False) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, json.dumps({"error": err.message}).encode(), headers, head=head)

    def _role(self) -> str:
        auth = self.headers.get("Authorization", "")
        bearer = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if bearer is not None and bearer == self.hub.token:
            return "write"
        if bearer is not None and self.hub.read_token is not None and bearer == self.hub.read_token:
            return "read"
        raise HubError(401, "Invalid credentials in Authorization header")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.hub.requests.append((method, url.path))
        body = self._body() if method == "POST" else b""
        fault = self.hub._fault(url.path)
        if fault == "garble":
            self._send(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "application/json"})
            return
        self.hub_reply_lost = fault == "lose_reply"  # do the work, answer nothing, hang up
        self.close_connection = self.close_connection or self.hub_reply_lost
        try:
            role = self._role()
            with self.hub.lock:
                self._route(method, url.path, parse_qs(url.query), body, role)
        except HubError as err:
            self._error(err, head=method == "HEAD")
        except Exception as err:  # a bug in this test double: answer 500 rather than hang the client
            self._error(HubError(500, f"{type(err).__name__}: {err}"), head=method == "HEAD")

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes, role: str) -> None:
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body), role)
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body))
        if method == "GET" and path == "/api/whoami-v2":
            return self._json(
                200, {"type": "user", "name": "tester", "auth": {"accessToken": {"role": role}}}
            )
        if match := API_ROUTE.match(path):
            kind, namespace, name, action, revision, rest = match.groups()
            repo = self._repo(TYPES[kind], f"{unquote(namespace)}/{unquote(name)}")
            revision = unquote(revision) if revision is not None else None
            rest = unquote(rest) if rest else ""
            return self._api(method, repo, action, revision, rest, query, body, role)
        if method in ("GET", "HEAD") and (match := RESOLVE_ROUTE.match(path)):
            kind, namespace, name, revision, file_path = match.groups()
            repo = self._repo(TYPES[kind] if kind else "model", f"{unquote(namespace)}/{unquote(name)}")
            return self._resolve(method, repo, unquote(revision), unquote(file_path))
        self.hub.unhandled.append((method, path))
        raise HubError(404, f"no route for {method} {path}")

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_of(self, repo: Repo, revision: str | None) -> Commit:
        commit = repo.resolve(revision or "main")
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # Endpoints.
    def _create_repo(self, payload: dict[str, Any], role: str) -> None:
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or "tester"
        repo_id = f"{namespace}/{payload['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"http://{self.headers.get('Host')}/{prefix}{repo_id}"
        if role != "write":
            raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace")
        if (repo_type, repo_id) in self.hub.repos:
            self._send(409, json.dumps({"error": "You already created this repo", "url": url}).encode())
            return
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repo(repo_id, repo_type, private)
        self.hub._commit(repo, "main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        self.hub.repos[(repo_type, repo_id)] = repo
        self._json(200, {"url": url, "name": repo_id})

    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        content = payload.get("content", "")
        if content.startswith("---\n"):
            try:
                yaml.safe_load(content.split("---\n")[1])
            except yaml.YAMLError as err:
                self._json(400, {"errors": [{"message": f"invalid YAML: {err}"}], "warnings": []})
                return
        self._json(200, {"errors": [], "warnings": []})

    def _api(
        self,
        method: str,
        repo: Repo,
        action: str | None,
        revision: str | None,
        rest: str,
        query: dict[str, list[str]],
        body: bytes,
        role: str,
    ) -> None:
        if method == "GET" and action is None:
            return self._info(repo, None)
        if method == "GET" and action == "revision":
            return self._info(repo, revision + ("/" + rest if rest else ""))
        if method == "GET" and action == "tree":
            return self._tree(repo, revision, rest, query.get("recursive", ["false"])[0].lower() == "true")
        if method == "GET" and action == "refs":
            return self._refs(repo)
        if method == "GET" and action == "commits":
            return self._commits(repo, revision)
        if method == "POST" and action == "paths-info":
            paths = parse_qs(body.decode()).get("paths", [])
            return self._paths_info(repo, revision, paths)
        if method == "POST" and action in ("preupload", "commit", "tag"):
            if role != "write":
                raise HubError(403, "Your token has read access only: you cannot write to this repo")
            if action == "preupload":
                return self._preupload(repo, revision, json.loads(body))
            if action == "commit":
                return self._commit(repo, revision or "main", body)
            return self._tag(repo, revision, json.loads(body))
        self.hub.unhandled.append((method, f"{action}"))
        raise HubError(404, f"no route for {method} {action}")

    def _info(self, repo: Repo, revision: str | None) -> None:
        commit = self._commit_of(repo, revision)
        card = None
        readme = commit.files.get("README.md", b"").decode()
        if readme.startswith("---\n"):
            card = yaml.safe_load(readme.split("---\n")[1])
        info = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "lastModified": DATE,
            "createdAt": DATE,
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
        }
        if card is not None:
            info["cardData"] = card
        self._json(200, info)

    @staticmethod
    def _file_entry(path: str, data: bytes) -> dict[str, Any]:
        return {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}

    @staticmethod
    def _folder_entry(path: str) -> dict[str, Any]:
        return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()}

    def _tree(self, repo: Repo, revision: str | None, folder: str, recursive: bool) -> None:
        commit = self._commit_of(repo, revision)
        folder = folder.strip("/")
        prefix = f"{folder}/" if folder else ""
        below = {p: d for p, d in commit.files.items() if p.startswith(prefix)}
        if folder and not below:
            raise HubError(404, "Entry not found", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        for path, data in sorted(below.items()):
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                sub = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(sub, self._folder_entry(sub))
            if recursive or len(parts) == 1:
                entries[path] = self._file_entry(path, data)
        self._json(200, [entries[k] for k in sorted(entries)])

    def _paths_info(self, repo: Repo, revision: str | None, paths: list[str]) -> None:
        commit = self._commit_of(repo, revision)
        out = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                out.append(self._file_entry(path, commit.files[path]))
            elif any(p.startswith(path + "/") for p in commit.files):
                out.append(self._folder_entry(path))
        self._json(200, out)

    def _refs(self, repo: Repo) -> None:
        def ref(kind: str, name: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        self._json(
            200,
            {
                "branches": [ref("heads", n, o) for n, o in sorted(repo.branches.items())],
                "tags": [ref("tags", n, o) for n, o in sorted(repo.tags.items())],
                "converts": [],
                "pullRequests": [],
            },
        )

    def _commits(self, repo: Repo, revision: str | None) -> None:
        commit: Commit | None = self._commit_of(repo, revision)
        by_oid = {c.oid: c for c in repo.commits}
        out = []
        while commit is not None:
            out.append({"id": commit.oid, "title": commit.title, "message": "", "authors": [], "date": DATE})
            commit = by_oid.get(commit.parent) if commit.parent else None
        self._json(200, out)

    def _preupload(self, repo: Repo, revision: str | None, payload: dict[str, Any]) -> None:
        commit = repo.resolve(revision or "main")
        files = commit.files if commit is not None else {}
        out = []
        for entry in payload.get("files", []):
            existing = files.get(entry["path"])
            out.append(
                {
                    "path": entry["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_sha1(existing) if existing is not None else None,
                }
            )
        self._json(200, {"files": out, "commitOid": commit.oid if commit else None})

    def _commit(self, repo: Repo, branch: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        if (concurrent := self.hub.races.pop(repo.repo_id, None)) is not None:
            head = repo.resolve("main")
            assert head is not None
            self.hub._commit(repo, "main", {**head.files, **concurrent}, "concurrent edit")
        head = repo.branches.get(branch)
        if head is None:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        parent = header.get("parentCommit")
        if parent is not None and parent != head:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.resolve(branch).files)  # type: ignore[union-attr]
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"].strip("/")
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "only base64 file contents are supported")
                files[path] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(path + "/")}
            else:
                raise HubError(
                    400, f"unsupported commit operation {key!r} (this test hub takes regular files)"
                )
        oid = self.hub._commit(repo, branch, files, header.get("summary", ""))
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        host = self.headers.get("Host")
        self._json(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"http://{host}/{prefix}{repo.repo_id}/commit/{oid}",
                "pullRequestUrl": None,
            },
        )

    def _tag(self, repo: Repo, revision: str | None, payload: dict[str, Any]) -> None:
        commit = self._commit_of(repo, revision)
        tag = payload["tag"]
        if tag in repo.tags or tag in repo.branches:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = commit.oid
        self._json(200, {})

    def _resolve(self, method: str, repo: Repo, revision: str, path: str) -> None:
        head = method == "HEAD"
        commit = self._commit_of(repo, revision)
        data = commit.files.get(path)
        if data is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_sha1(data)}"',
            "Accept-Ranges": "bytes",
        }
        status, total = 200, len(data)
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if ranged and total:
            start_s, end_s = ranged.groups()
            if start_s:
                start, end = int(start_s), min(int(end_s) if end_s else total - 1, total - 1)
            else:
                start, end = max(0, total - int(end_s)), total - 1
            if start >= total:
                self._send(416, b"", {"Content-Range": f"bytes */{total}"}, head=head)
                return
            data = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            status = 206
        self._send(status, data, headers, head=head)

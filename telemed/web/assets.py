"""Static files that a phone fetches once per release: versioned URLs, cached for a year.

Pages name a static file through ``static_url("call.js")``, which adds ``?v=`` and a hash
of its content. A request carrying the current version is answered with ``Cache-Control:
public, max-age=31536000, immutable``: the browser never asks again, not even to revalidate,
until a release changes the file and with it the URL. Any other request (no ``v``, or an old
one) gets ``no-cache``: kept, but revalidated with its ETag.

The scripts are native ES modules that import one another by relative URL
(``import { t } from "./i18n.js"``). A module loaded as ``call.js?v=…`` would still import
``./i18n.js`` bare, revalidated on every call over a 2G link, and the page's
``modulepreload`` of ``i18n.js?v=…`` would be wasted (the browser's module map is keyed by
the whole URL). So the scripts are served with their imports, and any ``"/static/…"``
string (the service worker's shell list), rewritten to the versioned URLs. A script's
version hashes everything it reaches, so a change in ``i18n.js`` gives ``call.js`` a new
URL too; reachability (not a recursive hash) because modules may import each other in a
cycle (``offline/page.js`` and ``offline/forms.js``).

Files are read when first asked for and read again when their size or modification time
changes, so a developer's edit shows at the next page load without a restart.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import threading
from dataclasses import dataclass
from os import PathLike, stat_result
from pathlib import Path
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"  # shipped in the wheel
STATIC_PREFIX = "/static/"

#: Sent with a request that names the file's current version.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Sent otherwise: the browser may keep it but asks (ETag) before using it again.
REVALIDATE = "no-cache"

# A relative specifier after `from`, a bare `import` or a dynamic `import(`.
_IMPORTED = re.compile(r"""(\b(?:from|import)\s*\(?\s*)(["'])(\.{1,2}/[^"'?#\s]+)\2""")
# An absolute "/static/…" string anywhere (absolute imports, the service worker's list).
_ABSOLUTE = re.compile(r"""(["'])/static/([^"'?#\s]+)\1""")


@dataclass(frozen=True, slots=True)
class _Source:
    """One file as read from disk, and the static files its text names (scripts only)."""

    key: tuple[int, int]  # modification time (ns) and size when read
    raw: bytes
    references: frozenset[str]  # paths relative to the static directory


class StaticAssets:
    """The versions and the served text of the files under ``root``."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.root = root.resolve()
        self._sources: dict[str, _Source] = {}
        self._served: dict[str, tuple[str, bytes]] = {}  # path -> (version, body) last made
        self._lock = threading.Lock()

    def _path(self, relative: str) -> Path | None:
        """The file named by ``relative`` (posix, under root), or None if there is none."""
        if not relative or relative.startswith("/") or "\\" in relative:
            return None
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    def exists(self, relative: str) -> bool:
        return self._path(relative) is not None

    def _resolve(self, module: str, specifier: str) -> str | None:
        """The static path a reference in ``module`` names, if it is one of our files."""
        if specifier.startswith(STATIC_PREFIX):
            target = specifier.removeprefix(STATIC_PREFIX)
        else:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(module), specifier))
        return target if self.exists(target) else None

    def _source(self, relative: str) -> _Source:
        path = self._path(relative)
        if path is None:
            raise FileNotFoundError(relative)
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            known = self._sources.get(relative)
        if known is not None and known.key == key:
            return known
        raw = path.read_bytes()
        references: set[str] = set()
        if relative.endswith(".js"):
            text = raw.decode("utf-8")
            for match in _IMPORTED.finditer(text):
                if (target := self._resolve(relative, match.group(3))) is not None:
                    references.add(target)
            for match in _ABSOLUTE.finditer(text):
                if (target := self._resolve(relative, STATIC_PREFIX + match.group(2))) is not None:
                    references.add(target)
        source = _Source(key, raw, frozenset(references))
        with self._lock:
            self._sources[relative] = source
        return source

    def _reachable(self, relative: str) -> dict[str, _Source]:
        seen: dict[str, _Source] = {}
        todo = [relative]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen[path] = self._source(path)
            todo.extend(seen[path].references - seen.keys())
        return seen

    def version(self, relative: str) -> str:
        """12 hex digits that change whenever the file, or a file it reaches, changes."""
        digest = hashlib.sha256()
        reachable = self._reachable(relative)
        for path in sorted(reachable):
            digest.update(path.encode() + b"\0" + hashlib.sha256(reachable[path].raw).digest())
        return digest.hexdigest()[:12]

    def url(self, relative: str) -> str:
        """``/static/<relative>?v=<version>``; raises FileNotFoundError for a file we lack
        (a misspelt name fails where the page is made, not as a 404 in the browser)."""
        return f"{STATIC_PREFIX}{relative}?v={self.version(relative)}"

    def served(self, relative: str) -> tuple[str, bytes]:
        """The version and the body to send: a script with its references versioned, any
        other file as it is on disk."""
        version = self.version(relative)
        with self._lock:
            made = self._served.get(relative)
        if made is not None and made[0] == version:
            return made
        raw = self._source(relative).raw
        if relative.endswith(".js"):
            raw = self._rewrite(relative, raw.decode("utf-8")).encode("utf-8")
        with self._lock:
            self._served[relative] = (version, raw)
        return version, raw

    def _rewrite(self, module: str, text: str) -> str:
        def imported(match: re.Match[str]) -> str:
            target = self._resolve(module, match.group(3))
            if target is None:
                return match.group(0)
            lead, quote, specifier = match.groups()
            return f"{lead}{quote}{specifier}?v={self.version(target)}{quote}"

        def absolute(match: re.Match[str]) -> str:
            quote, target = match.groups()
            if not self.exists(target):
                return match.group(0)
            return f"{quote}{self.url(target)}{quote}"

        return _ABSOLUTE.sub(absolute, _IMPORTED.sub(imported, text))


#: The application's static files (one set per process: they ship with the package).
ASSETS = StaticAssets()


def cache_control(scope: Scope, version: str) -> str:
    """Immutable when the request names ``version``, else revalidated."""
    asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
    return IMMUTABLE if asked == version else REVALIDATE


class VersionedStaticFiles(StaticFiles):
    """``/static``: each file with the Cache-Control its ``?v=`` earns (see above), and the
    scripts with their references versioned."""

    def __init__(self, assets: StaticAssets = ASSETS) -> None:
        super().__init__(directory=assets.root)
        self.assets = assets

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        relative = Path(full_path).resolve().relative_to(self.assets.root).as_posix()
        if not relative.endswith(".js"):
            response = super().file_response(full_path, stat_result, scope, status_code)
            response.headers["cache-control"] = cache_control(scope, self.assets.version(relative))
            return response
        version, body = self.assets.served(relative)
        headers = {"etag": f'"{version}"', "cache-control": cache_control(scope, version)}
        if Headers(scope=scope).get("if-none-match") == headers["etag"]:
            return NotModifiedResponse(Headers(headers))
        return Response(body, status_code, headers, media_type="text/javascript")

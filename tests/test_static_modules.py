"""The pages' scripts are native ES modules served as written (no bundler): with a JavaScript
MIME type (under ``nosniff`` a browser refuses a module of any other type), allowed by the CSP
(scripts from 'self' only, nothing inline), and each page preloads its whole module graph so
that a slow link fetches the modules side by side instead of one import after another. The
call page with every module it loads stays within the 2G first-load budget."""

from __future__ import annotations

import posixpath
import re

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from telemed.accounts.models import Role
from telemed.app import STATIC_DIR
from telemed.consults.models import ParticipantRelation
from telemed.web.assets import ASSETS
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users, consult_payload
from tests.test_pages import PAGE_BUDGET_BYTES
from tests.test_sessions import involve

JAVASCRIPT = {"text/javascript", "application/javascript"}
IMPORT = re.compile(
    r"""^\s*(?:import\s+[\w$\s{},*]+?|export\s*(?:\*|\{[^}]*\}))\s*from\s*["']([^"']+)["']""", re.M
)
BARE_IMPORT = re.compile(r"""^\s*import\s*["']([^"']+)["']""", re.M)
SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
PRELOAD = re.compile(r'<link rel="modulepreload" href="([^"]+)">')


def imports_of(source: str) -> list[str]:
    return IMPORT.findall(source) + BARE_IMPORT.findall(source)


def module_graph(client: TestClient | ApiClient, entry: str) -> dict[str, httpx.Response]:
    """Every module a page loads from ``entry``, as served, following the static imports;
    keyed by URL (with its ``?v=``) as the browser's module map keys them."""
    graph: dict[str, httpx.Response] = {}
    todo = [entry]
    while todo:
        url = todo.pop()
        if url in graph:
            continue
        response = client.get(url)
        assert response.status_code == 200, url
        graph[url] = response
        path = url.split("?", 1)[0]
        for specifier in imports_of(response.text):
            # Relative specifiers only: a bare one ("lib") needs an import map we do not have.
            assert specifier.startswith(("./", "../")), f"{path} imports {specifier!r}"
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), specifier))
            # Versioned as the pages name it: one fetch, cached a year (telemed.web.assets).
            bare = target.split("?", 1)[0].removeprefix("/static/")
            assert target == ASSETS.url(bare), (path, specifier)
            todo.append(target)
    return graph


def script_policy(response: httpx.Response) -> str:
    directives = dict(
        d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
    )
    return directives.get("script-src", directives["default-src"])


#: Every page of a logged-in user also loads the offline queue's entry (base.html).
OFFLINE_ENTRY = ASSETS.url("offline/page.js")


def assert_loads_its_modules_only(
    page: httpx.Response, client: ApiClient, entry: str, offline: bool = True
) -> None:
    """The page's module script and the offline one (``offline``: the call page has none),
    no inline script, under the CSP's 'self'; the preloads are their module graphs (an
    entry may go without: its tag is right there). ``entry`` is a versioned URL
    (``ASSETS.url``)."""
    tags = SCRIPT_TAG.findall(page.text)
    assert tags[0] == f'<script type="module" src="{entry}">'
    entries = {entry}
    if offline:
        assert re.fullmatch(
            rf'<script type="module" src="{re.escape(OFFLINE_ENTRY)}" data-offline-user="\d+">',
            tags[1],
        )
        entries.add(OFFLINE_ENTRY)
    assert len(tags) == len(entries)
    assert script_policy(page) == "'self'"
    graph: dict[str, httpx.Response] = {}
    for one in entries:
        graph |= module_graph(client, one)
    preloads = PRELOAD.findall(page.text)
    assert len(preloads) == len(set(preloads))
    assert set(preloads) | entries == set(graph)


def test_the_graph_reader_follows_imports_and_refuses_bare_names() -> None:
    """The reader below on a known answer: it finds every import form the modules use."""
    source = """import { a } from "./a.js";
import {
  b, c } from '../b.js';
export { d } from "./d.js";
import "./side-effect.js";
const text = "import { no } from './not-a-module.js'";"""
    assert sorted(imports_of(source)) == ["../b.js", "./a.js", "./d.js", "./side-effect.js"]


def test_every_script_is_served_as_javascript(client: TestClient) -> None:
    scripts = sorted(STATIC_DIR.rglob("*.js"))
    assert {"call.js", "uploader.js", "upload.js"} <= {s.name for s in scripts}
    for script in scripts:
        path = "/static/" + script.relative_to(STATIC_DIR).as_posix()
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].split(";")[0] in JAVASCRIPT, path
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_call_page_preloads_its_modules_within_the_budget(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    involve(db, consult_id, users.make(Role.specialist), ParticipantRelation.assigned)
    page = nurse.get(f"/consults/{consult_id}/call")
    assert page.status_code == 200
    entry = ASSETS.url("call.js")
    assert_loads_its_modules_only(page, nurse, entry, offline=False)
    graph = module_graph(nurse, entry)
    # The call's photos go through the same uploader as the consult page's form, loaded
    # with the first photo shared (a dynamic import), not with the page.
    assert ASSETS.url("uploader.js") not in graph
    photos = nurse.get(ASSETS.url("call/photos.js")).text
    assert f'import("../{ASSETS.url("uploader.js").removeprefix("/static/")}")' in photos
    hrefs = re.findall(r'<link rel="stylesheet" href="([^"]+)">', page.text)
    assert set(hrefs) == {ASSETS.url("app.css")}
    styles = [nurse.get(href) for href in hrefs]
    total = len(page.content) + sum(len(r.content) for r in [*styles, *graph.values()])
    assert total <= PAGE_BUDGET_BYTES


def test_the_consult_page_preloads_the_shared_uploader(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    page = nurse.get(f"/consults/{consult_id}")
    assert page.status_code == 200
    entry = ASSETS.url("upload.js")
    assert_loads_its_modules_only(page, nurse, entry)
    assert set(module_graph(nurse, entry)) == {
        ASSETS.url("upload.js"),
        ASSETS.url("uploader.js"),
        ASSETS.url("photo.js"),  # photos scaled before the upload
        ASSETS.url("voice.js"),  # voice notes in the thread
        ASSETS.url("i18n.js"),  # the scripts' words in the page's language
    }

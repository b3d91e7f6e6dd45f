"""Static files are fetched once per release (issue 15): the pages name them with a version
of their content, such a URL is cached a year without revalidation, and the scripts' imports
and the service worker's shell list carry the same versions (telemed/web/assets.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi.testclient import TestClient

from telemed.accounts.models import Role
from telemed.web.assets import ASSETS, IMMUTABLE, REVALIDATE, StaticAssets
from tests.helpers import Users
from tests.test_pages import page_login

TEMPLATES = Path(__file__).resolve().parents[1] / "telemed" / "templates"


def test_a_versioned_url_is_kept_a_year_and_a_bare_or_old_one_revalidated(
    client: TestClient,
) -> None:
    for name in ("app.css", "call.js", "call/peers.js"):
        current = client.get(ASSETS.url(name))
        assert current.status_code == 200, name
        assert current.headers["cache-control"] == IMMUTABLE, name
        for other in (f"/static/{name}", f"/static/{name}?v=000000000000"):
            assert client.get(other).headers["cache-control"] == REVALIDATE, other
    # A script's ETag is its version: revalidating a bare URL costs a 304 and no body.
    script = client.get("/static/i18n.js")
    again = client.get("/static/i18n.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert script.headers["etag"] == f'"{ASSETS.version("i18n.js")}"'


def test_scripts_import_and_pages_name_the_same_versioned_urls(
    client: TestClient, users: Users
) -> None:
    page_login(client, users.make(Role.clinician))
    home = client.get("/").text
    named = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', home))
    assert named >= {ASSETS.url("app.css"), ASSETS.url("offline/page.js")}
    assert all("?v=" in url for url in named), named
    page = client.get(ASSETS.url("offline/page.js")).text
    # Static and dynamic imports alike; forms.js imports page.js back (a cycle).
    assert f'from "./queue.js?v={ASSETS.version("offline/queue.js")}"' in page
    assert f'import("./forms.js?v={ASSETS.version("offline/forms.js")}")' in page
    forms = client.get(ASSETS.url("offline/forms.js")).text
    assert f'from "./page.js?v={ASSETS.version("offline/page.js")}"' in forms


def test_the_service_worker_keeps_the_versions_the_pages_use(client: TestClient) -> None:
    worker = client.get("/sw.js").text
    shell = re.search(r"const ASSETS = \[(.*?)\];", worker, re.S)
    assert shell is not None
    listed = re.findall(r'"([^"]+)"', shell.group(1))
    assert "/static/app.css" not in listed
    assert listed
    assert all(url == ASSETS.url(url.split("?")[0].removeprefix("/static/")) for url in listed)
    assert f'from "{ASSETS.url("offline/send.js")}"' in worker
    assert f'href="{ASSETS.url("app.css")}"' in worker  # the offline page's style


def test_a_version_follows_everything_a_script_reaches(tmp_path: Path) -> None:
    """Versions from real files: changing a module two imports away, or one in a cycle,
    gives the entry a new URL; a file it does not reach changes nothing."""
    (tmp_path / "lib").mkdir()
    files = {
        "main.js": 'import { a } from "./lib/a.js";\nconst css = "/static/site.css";\n',
        "lib/a.js": 'import { b } from "./b.js";\nexport const a = 1;\n',
        "lib/b.js": 'export const b = 2;\nimport("../main.js");\n',  # back to the entry
        "site.css": "body{margin:0}\n",
        "other.js": "export const other = 3;\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assets = StaticAssets(tmp_path)
    before = {name: assets.version(name) for name in files}
    _version, body = assets.served("main.js")
    assert f'from "./lib/a.js?v={before["lib/a.js"]}"' in body.decode()
    assert f'"/static/site.css?v={before["site.css"]}"' in body.decode()
    assert assets.served("site.css")[1] == b"body{margin:0}\n"  # not a script: as it is

    b = tmp_path / "lib" / "b.js"
    b.write_text("export const b = 20;\nimport('../main.js');\n")
    os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 10**9))
    after = {name: assets.version(name) for name in files}
    assert after["main.js"] != before["main.js"]
    assert after["lib/a.js"] != before["lib/a.js"]
    assert after["other.js"] == before["other.js"]
    assert after["site.css"] == before["site.css"]
    assert f'"./lib/a.js?v={after["lib/a.js"]}"' in assets.served("main.js")[1].decode()


def test_no_template_names_a_static_file_without_its_version() -> None:
    bare = [
        f"{path.name}: {line.strip()}"
        for path in TEMPLATES.glob("*.html")
        for line in path.read_text().splitlines()
        if re.search(r'(?:src|href)="/static/', line)
    ]
    assert bare == []

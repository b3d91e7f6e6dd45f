"""The server's side of offline-first intake (the browser's is tests/browser/
test_offline_intake.py): the service worker is served from the root so that its scope is
the whole site, revalidated on every update check and allowed by the CSP; pages of a
logged-in user load the offline queue; logout tells the browser to drop what it kept."""

from __future__ import annotations

from fastapi.testclient import TestClient

from telemed.accounts.models import Role
from telemed.web.assets import ASSETS
from tests.conftest import LoginFn
from tests.helpers import Users
from tests.test_pages import page_login
from tests.test_static_modules import JAVASCRIPT, script_policy


def test_the_service_worker_is_served_from_the_root_for_the_whole_site(
    client: TestClient,
) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in JAVASCRIPT
    assert response.headers["cache-control"] == "no-cache"  # a new version is picked up
    assert response.headers["service-worker-allowed"] == "/"
    assert script_policy(response) == "'self'"  # worker-src falls back to it: same origin
    assert "telemed-shell-" in response.text


def test_pages_of_a_logged_in_user_load_the_offline_queue(client: TestClient, users: Users) -> None:
    assert "/static/offline/page.js" not in client.get("/login").text
    clinician = users.make(Role.clinician)
    page_login(client, clinician)
    home = client.get("/").text
    page_js = ASSETS.url("offline/page.js")
    assert f'src="{page_js}" data-offline-user="{clinician.id}"' in home
    assert "data-offline-queue" in home
    assert 'data-offline="consult"' in client.get("/consults/new").text


def test_logout_clears_the_sites_storage_and_cache(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    response = nurse.client.post("/logout", data={"csrf_token": nurse.csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["clear-site-data"] == '"cache", "storage"'
    assert nurse.get("/api/v1/consults").status_code == 401

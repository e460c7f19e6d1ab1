"""The API reference page: admins only, linked from the API keys page, rendered from the
OpenAPI document at request time (an operation added to the code shows up at once), readable
at desktop width and on a 390 px phone, with no request leaving the portal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import BaseModel, Field

from portal import api
from portal.api import PROBLEM_TYPES, OPERATIONS, Operation
from tests.portal.conftest import World, sign_in_as
from tests.portal.test_browser import Live, assert_clean, browser, live, signed_in_page  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def test_admins_read_every_operation_schema_scope_and_problem_type_of_the_document(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in_as(app, client, world.admin)
    keys_page = client.get("/settings/api-keys").get_data(as_text=True)
    assert 'href="/settings/api-keys/reference"' in keys_page
    answer = client.get("/settings/api-keys/reference")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    document = client.get("/api/v1/openapi.json").get_json()
    for path, methods in document["paths"].items():
        for method, entry in methods.items():
            assert f'id="{entry["operationId"]}"' in page
            assert f'<span class="method method-{method}">{method.upper()}</span> <code class="path">{path}</code>' in page
            assert f"Scope <code>{entry['x-pawpost-scope']}</code>" in page
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    for kind in document["x-problem-types"]:
        assert f"<code>{kind}</code>" in page
    # Parameters with their limits and descriptions, bodies linked to their schemas.
    assert "`next_cursor` of the previous page" in page and "1–200" in page and "default 50" in page
    assert '<code>as_business</code>' in page and "Post under the business&#39;s own name" in page
    assert '<code>multipart/form-data</code>' in page and 'href="#schema-NewMessage"' in page
    assert "<script" not in page.split("<main", 1)[1].split("</main>", 1)[0]  # the page is server-rendered


def test_an_operation_added_to_the_code_is_on_the_page_at_once(app: Flask, client: FlaskClient, world: World) -> None:
    class Walk(BaseModel):
        """A walk, for this test only."""

        minutes: int = Field(ge=5, le=240, description="How long the walk lasted")

    extra = Operation("GET", "/walks/{walk_id}", "read_walk_for_test", "Read a walk", "messages:read", Walk, 200, path_params=("walk_id",))
    sign_in_as(app, client, world.admin)
    OPERATIONS.append(extra)
    try:
        page = client.get("/settings/api-keys/reference").get_data(as_text=True)
    finally:
        OPERATIONS.remove(extra)
    assert 'id="read_walk_for_test"' in page and "/api/v1/walks/{walk_id}" in page and 'id="schema-Walk"' in page
    assert "How long the walk lasted" in page and "5–240" in page
    assert 'id="read_walk_for_test"' not in client.get("/settings/api-keys/reference").get_data(as_text=True)


def test_only_admins_see_it(app: Flask, client: FlaskClient, world: World) -> None:
    assert client.get("/settings/api-keys/reference").status_code == 302  # to the sign-in page
    sign_in_as(app, client, world.senior)
    assert client.get("/settings/api-keys/reference").status_code in (403, 404)


def test_every_problem_kind_the_api_raises_is_documented() -> None:
    raised = set()
    for path in (ROOT / "portal").glob("api*.py"):
        raised.update(re.findall(r'ApiProblem\(\s*\d{3},\s*"([a-z-]+)"', path.read_text(encoding="utf-8")))
    raised.update(api.HTTP_KINDS.values())
    assert raised and raised <= set(PROBLEM_TYPES), sorted(raised - set(PROBLEM_TYPES))


@pytest.mark.parametrize("width", [1280, 390])
def test_the_reference_reads_at_desktop_and_phone_width(browser, live: Live, width: int) -> None:  # noqa: F811, ANN001
    page = signed_in_page(browser, live, "ada@a.test", width=width)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live.base_url) else None)
    page.goto(live.url("/settings/api-keys"))
    page.get_by_role("link", name="API reference").click()
    page.wait_for_load_state()
    assert page.url == live.url("/settings/api-keys/reference")
    heading = page.get_by_role("heading", name="POST /api/v1/threads/{thread_id}/messages")
    assert heading.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing off-screen sideways
    page.screenshot(path=f"/tmp/pawpost-api-reference-{width}.png", full_page=False)
    # A body's schema link jumps to the schema's table.
    page.locator("#create_message").get_by_role("link", name="NewMessage").first.click()
    assert page.url.endswith("#schema-NewMessage")
    assert page.locator("#schema-NewMessage").get_by_text("as_business", exact=True).is_visible()
    page.screenshot(path=f"/tmp/pawpost-api-reference-schema-{width}.png", full_page=False)
    assert outside == []  # no CDN, no network: everything from the portal itself
    assert_clean(page)

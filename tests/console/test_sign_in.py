"""Staff sign-in for the consoles: a code from the manager, a session cookie, its end."""

from __future__ import annotations

import os
import subprocess
import sys
from uuid import UUID

from booking import db
from tests.console.helpers import csrf_of, issue_code, signed_in_client
from tests.support import World


async def _execute(sql: str, *args: object) -> None:
    async with db.connection() as conn:
        await conn.execute(sql, *args)


async def test_a_code_from_the_manager_opens_a_session_in_an_httponly_cookie(
    world: World,
) -> None:
    issued = await issue_code(world, label="Counter 1")
    assert issued["link"].endswith(f"/desk/sign-in?code={issued['code']}")
    assert len(issued["code"]) == 9
    assert issued["code"][4] == "-"
    client = world.client(None, follow_redirects=False)
    # Typed at the counter, in lower case with a space and look-alikes: still the code.
    typed = issued["code"].lower().replace("-", " ")
    form = await client.get("/desk/sign-in")
    answer = await client.post("/desk/sign-in", data={"code": typed, "csrf": csrf_of(form.text)})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("booking_staff=")
    )
    flags = cookie.lower()
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # plain http here; see the https test below
    desk = await client.get("/desk")
    assert desk.status_code == 200
    assert "Salone Test" in desk.text
    assert 'id="signed-in-as">Counter 1<' in desk.text


async def test_a_code_works_once(world: World) -> None:
    issued = await issue_code(world)
    first = world.client(None, follow_redirects=False)
    form = await first.get("/desk/sign-in")
    ok = await first.post(
        "/desk/sign-in", data={"code": issued["code"], "csrf": csrf_of(form.text)}
    )
    assert ok.status_code == 303
    second = world.client(None, follow_redirects=False)
    form = await second.get("/desk/sign-in")
    again = await second.post(
        "/desk/sign-in", data={"code": issued["code"], "csrf": csrf_of(form.text)}
    )
    assert again.status_code == 400
    assert "booking_staff=" not in " ".join(again.headers.get_list("set-cookie"))
    assert (await second.get("/desk")).status_code == 303


async def test_an_expired_code_is_refused(world: World) -> None:
    issued = await issue_code(world)
    await _execute(
        "UPDATE staff_sign_in SET created_at = now() - interval '1 hour', "
        "expires_at = now() - interval '1 minute'"
    )
    client = world.client(None, follow_redirects=False)
    form = await client.get("/desk/sign-in")
    answer = await client.post(
        "/desk/sign-in", data={"code": issued["code"], "csrf": csrf_of(form.text)}
    )
    assert answer.status_code == 400


async def test_the_cookie_is_secure_over_https(world: World) -> None:
    issued = await issue_code(world)
    client = world.client(None, follow_redirects=False, headers={"X-Forwarded-Proto": "https"})
    form = await client.get("/desk/sign-in")
    # A real browser returns a Secure cookie over https; this client, speaking http, must
    # be handed it (the sign-in form's own cookie is Secure here too).
    pre = next(c for c in form.headers.get_list("set-cookie") if c.startswith("booking_staff_pre"))
    assert "secure" in pre.lower()
    client.cookies.set("booking_staff_pre", pre.split(";")[0].split("=", 1)[1])
    answer = await client.post(
        "/desk/sign-in", data={"code": issued["code"], "csrf": csrf_of(form.text)}
    )
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("booking_staff=")
    )
    assert "secure" in cookie.lower()


async def test_the_sign_in_form_needs_its_own_token(world: World) -> None:
    issued = await issue_code(world)
    client = world.client(None, follow_redirects=False)
    answer = await client.post("/desk/sign-in", data={"code": issued["code"], "csrf": "x"})
    assert answer.status_code == 403
    await client.get("/desk/sign-in")  # its cookie, and then a token not of that form
    not_ascii = await client.post("/desk/sign-in", data={"code": issued["code"], "csrf": "ñ" * 64})
    assert not_ascii.status_code == 403  # a refusal like any wrong token, not a 500
    # The code was not spent: the real form still signs in with it.
    form = await client.get("/desk/sign-in")
    ok = await client.post(
        "/desk/sign-in", data={"code": issued["code"], "csrf": csrf_of(form.text)}
    )
    assert ok.status_code == 303


async def test_without_a_session_the_desk_sends_you_to_sign_in(world: World) -> None:
    client = world.client(None, follow_redirects=False)
    answer = await client.get("/desk?q=anna")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk/sign-in?next=%2Fdesk%3Fq%3Danna"
    script = await client.get("/desk", headers={"X-Console": "1"})
    assert script.status_code == 401
    # An API key is not a console session.
    keyed = world.client("front_desk", follow_redirects=False)
    assert (await keyed.get("/desk")).status_code == 303


async def test_sign_out_ends_the_session(world: World) -> None:
    client = await signed_in_client(world)
    desk = await client.get("/desk")
    cookie = client.cookies["booking_staff"]
    out = await client.post("/desk/sign-out", data={"csrf": csrf_of(desk.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/desk/sign-in?out=1"
    assert (await client.get("/desk")).status_code == 303
    # The old cookie, replayed, is dead too (the session is closed, not just forgotten).
    replay = world.client(None, follow_redirects=False, cookies={"booking_staff": cookie})
    assert (await replay.get("/desk")).status_code == 303


async def test_a_form_without_the_csrf_token_is_refused(world: World) -> None:
    client = await signed_in_client(world)
    desk = await client.get("/desk")
    missing = await client.post("/desk/sign-out", data={})
    wrong = await client.post("/desk/sign-out", data={"csrf": "0" * 64})
    not_ascii = await client.post("/desk/sign-out", data={"csrf": "ñ" * 64})
    foreign = await client.post(
        "/desk/sign-out",
        data={"csrf": csrf_of(desk.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert [r.status_code for r in (missing, wrong, not_ascii, foreign)] == [403] * 4
    assert (await client.get("/desk")).status_code == 200  # still signed in


async def test_an_expired_or_idle_session_ends(world: World) -> None:
    client = await signed_in_client(world)
    assert (await client.get("/desk")).status_code == 200
    await _execute("UPDATE staff_session SET last_seen_at = now() - interval '3 hours'")
    assert (await client.get("/desk")).status_code == 303
    other = await signed_in_client(world)
    await _execute(
        "UPDATE staff_session SET created_at = now() - interval '13 hours', "
        "expires_at = now() - interval '1 hour' WHERE signed_out_at IS NULL "
        "AND last_seen_at > now() - interval '1 hour'"
    )
    assert (await other.get("/desk")).status_code == 303


async def test_revoking_the_key_ends_its_sessions(world: World) -> None:
    client = await signed_in_client(world, label="Counter 2")
    assert (await client.get("/desk")).status_code == 200
    async with db.connection() as conn:
        key_id = await conn.fetchval("SELECT api_key_id FROM staff_session")
    async with world.client("manager") as manager:
        revoked = await manager.post(f"/v1/api-keys/{key_id}/revoke")
    assert revoked.status_code == 200
    assert (await client.get("/desk")).status_code == 303


async def test_who_may_issue_a_sign_in(world: World) -> None:
    async with world.client("front_desk") as desk:
        refused = await desk.post("/v1/staff-sign-ins", json={})
    assert refused.status_code == 403
    async with db.connection() as conn:
        other_business = await conn.fetchval("SELECT id FROM business WHERE slug = 'other-salon'")
    async with world.client("manager") as manager:
        elsewhere = await manager.post(
            "/v1/staff-sign-ins", json={"business_id": str(other_business)}
        )
        bad = await manager.post("/v1/staff-sign-ins", json={"role": "admin"})
    assert elsewhere.status_code == 404
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM staff_sign_in") == 0


async def test_a_sign_in_for_an_existing_key(world: World) -> None:
    async with db.connection() as conn:
        desk_key = await conn.fetchval(
            "SELECT id FROM api_key WHERE kind = 'staff' AND role = 'front_desk'"
        )
    issued = await issue_code(world, api_key_id=str(desk_key))
    assert UUID(issued["api_key_id"]) == desk_key


def test_the_cli_prints_a_code_and_link(world: World) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "BOOKING_SECRET_KEY": os.environ["BOOKING_SECRET_KEY"],
        "BOOKING_PUBLIC_BASE_URL": "https://desk.example",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "booking.cli",
            "sign-in",
            "--business",
            str(world.business_id),
            "--label",
            "Counter 3",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"link": "https://desk.example/desk/sign-in?code=' in result.stdout

"""Sign-in throttling: the token endpoint, /login/ and /admin/login/ count failures per client
address and per username; past a limit even the right password is refused until the window
ends. Time is moved with a controllable clock, never by sleeping."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from rest_framework.test import APIClient

from reviewapp import login_throttle
from reviewapp.models import PersonalToken
from tests.factories import DEFAULT_PASSWORD, UserFactory

TOKEN_URL = "/api/v1/auth/token"
WINDOW = 900
START = 1_800_000_000.0  # a window boundary: 1_800_000_000 / 900 is a whole number


@pytest.fixture
def clock(monkeypatch, settings):
    settings.LOGIN_FAILURE_WINDOW_SECONDS = WINDOW
    settings.LOGIN_FAILURES_PER_USERNAME = 5
    settings.LOGIN_FAILURES_PER_ADDRESS = 8
    now = [START]
    monkeypatch.setattr(login_throttle, "clock", lambda: now[0])

    class Clock:
        def advance(self, seconds: float) -> None:
            now[0] += seconds

    return Clock()


def _token(username: str, password: str, address: str = "203.0.113.7", **headers: str):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=address, **headers
    )


def test_the_right_password_is_refused_once_the_username_is_over_its_limit(member, org, clock):
    member("engineer", username="alice")

    statuses = [_token("alice", f"guess-{n}").status_code for n in range(5)]
    clock.advance(60)
    response = _token("alice", DEFAULT_PASSWORD)

    assert statuses == [401] * 5
    assert response.status_code == 429
    assert response.json() == {"message": "Too many login attempts; try again in 14 minutes.", "errors": {}}
    assert response["Retry-After"] == str(WINDOW - 60)
    assert PersonalToken.objects.count() == 0


def test_the_lock_ends_with_the_window(member, org, clock):
    member("engineer", username="alice")
    for n in range(5):
        _token("alice", f"guess-{n}")
    clock.advance(WINDOW - 1)
    assert _token("alice", DEFAULT_PASSWORD).status_code == 429

    clock.advance(1)
    response = _token("alice", DEFAULT_PASSWORD)

    assert response.status_code == 201
    assert PersonalToken.objects.count() == 1


def test_variants_of_a_username_share_one_count(member, org, clock):
    member("engineer", username="alice")

    fullwidth = "\uff41\uff4c\uff49\uff43\uff45"
    for name in ["alice", "Alice", "ALICE", " alice ", fullwidth]:
        assert _token(name, "wrong", address=f"198.51.100.{len(name)}").status_code == 401

    assert _token("alice", DEFAULT_PASSWORD, address="192.0.2.200").status_code == 429


def test_rotating_x_forwarded_for_does_not_help_without_a_proxy(member, org, clock, settings):
    settings.NUM_PROXIES = 0
    for n in range(3):
        member("engineer", username=f"victim{n}")

    # Spread over three usernames (under their own limit) so only the address count can stop it.
    statuses = [
        _token(f"victim{n % 3}", f"guess-{n}", HTTP_X_FORWARDED_FOR=f"10.0.{n}.{n}").status_code for n in range(12)
    ]

    assert statuses == [401] * 8 + [429] * 4
    # The real address is throttled, for a correct password too, whatever header it sends.
    assert _token("victim0", DEFAULT_PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429
    assert _token("victim0", DEFAULT_PASSWORD, address="203.0.113.99").status_code == 201


def test_behind_a_proxy_the_address_the_proxy_saw_is_counted(member, org, clock, settings):
    settings.NUM_PROXIES = 1
    member("engineer", username="bob")
    proxy = "10.0.0.2"

    # The client prepends whatever it likes; the proxy appends the address it really saw.
    for n in range(8):
        _token(f"nobody{n}", "x", address=proxy, HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 203.0.113.7")
    blocked = _token("bob", DEFAULT_PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.7")
    other_client = _token("bob", DEFAULT_PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.4")

    assert blocked.status_code == 429
    assert other_client.status_code == 201


def test_a_success_resets_the_username_count_but_not_the_address_count(member, org, clock):
    member("engineer", username="alice")
    for n in range(4):
        _token("alice", f"guess-{n}")

    assert _token("alice", DEFAULT_PASSWORD).status_code == 201
    for n in range(4):
        assert _token("alice", f"again-{n}", address="198.51.100.1").status_code == 401
    # Four failures since the success: under the username limit of five.
    assert _token("alice", DEFAULT_PASSWORD, address="198.51.100.2").status_code == 201
    # The first address has 4 failures; 4 more (other names) reach its limit of 8.
    for n in range(4):
        _token(f"other{n}", "x")
    assert _token("alice", DEFAULT_PASSWORD).status_code == 429


def test_the_login_page_is_throttled_with_a_clear_message(member, org, clock):
    member("engineer", username="alice")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for n in range(5):
        assert client.post("/login/", {"username": "alice", "password": f"guess-{n}"}).status_code == 200

    response = client.post("/login/", {"username": "alice", "password": DEFAULT_PASSWORD})

    assert response.status_code == 429
    assert response["Retry-After"] == str(WINDOW)
    assert "Too many login attempts; try again in 15 minutes." in response.content.decode()
    assert SESSION_KEY not in client.session


def test_the_login_page_and_the_token_endpoint_share_the_count(member, org, clock):
    member("engineer", username="alice")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for n in range(3):
        client.post("/login/", {"username": "alice", "password": f"guess-{n}"})
    for n in range(2):
        _token("alice", f"guess-{n}", address="198.51.100.1")

    assert _token("alice", DEFAULT_PASSWORD, address="198.51.100.2").status_code == 429
    assert client.post("/login/", {"username": "alice", "password": DEFAULT_PASSWORD}).status_code == 429


def test_the_admin_login_is_throttled(db, clock):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="203.0.113.7")
    for n in range(5):
        response = client.post("/admin/login/", {"username": "root", "password": f"guess-{n}"})
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()

    response = client.post("/admin/login/", {"username": "root", "password": DEFAULT_PASSWORD})

    assert "Too many login attempts; try again in 15 minutes." in response.content.decode()
    assert SESSION_KEY not in client.session
    clock.advance(WINDOW)
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] is not None


def test_successful_sign_ins_are_not_counted(member, org, clock):
    member("engineer", username="alice")

    statuses = [_token("alice", DEFAULT_PASSWORD).status_code for _ in range(12)]

    assert statuses == [201] * 12


def test_sign_in_still_works_when_the_cache_is_down(member, org, clock, monkeypatch):
    member("engineer", username="alice")

    def down(*args, **kwargs):
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(login_throttle.cache, "get_many", down)
    monkeypatch.setattr(login_throttle.cache, "add", down)
    monkeypatch.setattr(login_throttle.cache, "delete", down)

    assert _token("alice", "wrong").status_code == 401
    assert _token("alice", DEFAULT_PASSWORD).status_code == 201


def test_the_reported_attack_forty_guesses_with_rotating_headers(member, org, settings, monkeypatch):
    # The defaults, no proxy: as reported, 40 guesses each with a fresh X-Forwarded-For, then
    # the right password.
    settings.NUM_PROXIES = 0
    monkeypatch.setattr(login_throttle, "clock", lambda: START)
    member("engineer", username="alice")

    statuses = [_token("alice", f"guess-{n}", HTTP_X_FORWARDED_FOR=f"10.{n}.0.1").status_code for n in range(40)]
    response = _token("alice", DEFAULT_PASSWORD, HTTP_X_FORWARDED_FOR="10.99.0.1")

    assert statuses == [401] * settings.LOGIN_FAILURES_PER_USERNAME + [429] * (
        40 - settings.LOGIN_FAILURES_PER_USERNAME
    )
    assert settings.LOGIN_FAILURES_PER_USERNAME == 10
    assert response.status_code == 429
    assert PersonalToken.objects.count() == 0


def test_parallel_wrong_guesses_let_at_most_the_limit_through_to_authenticate(db, clock, monkeypatch):
    # 20 guesses in flight at once for one name. With check-then-count, every one read a count
    # under the limit before any failure was recorded, so all 20 reached the password check.
    # `authenticate` holds each guess that gets through until every guess has either got
    # through or been refused, so all of them really overlap.
    from django.test import RequestFactory

    parallel = 20
    limit = 5  # LOGIN_FAILURES_PER_USERNAME from the clock fixture (the address limit is 8)
    state = {"inside": 0, "refused": 0, "max_inside": 0}
    condition = threading.Condition()
    start = threading.Barrier(parallel)

    def slow_wrong_password(request, **credentials):
        with condition:
            state["inside"] += 1
            state["max_inside"] = max(state["max_inside"], state["inside"])
            condition.notify_all()
            condition.wait_for(lambda: state["inside"] + state["refused"] >= parallel, timeout=10)
        return None

    monkeypatch.setattr(login_throttle, "authenticate", slow_wrong_password)
    outcomes: list[str] = []

    def guess(n: int) -> None:
        request = RequestFactory().post("/login/", REMOTE_ADDR=f"198.51.100.{n}")
        start.wait(timeout=10)
        try:
            user = login_throttle.authenticate_throttled(request, username="alice", password=f"guess-{n}")
        except login_throttle.Throttled:
            with condition:
                state["refused"] += 1
                condition.notify_all()
            outcomes.append("throttled")
        else:
            outcomes.append("wrong" if user is None else "signed in")

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["throttled"] * (parallel - limit) + ["wrong"] * limit
    # The guesses that got through were all inside `authenticate` at the same time: the race
    # took place, and counting first still held it to the limit.
    assert state["max_inside"] == limit
    # The window stays closed for the right password too.
    monkeypatch.setattr(login_throttle, "authenticate", lambda request, **credentials: object())
    with pytest.raises(login_throttle.Throttled):
        login_throttle.authenticate_throttled(
            RequestFactory().post("/login/", REMOTE_ADDR="192.0.2.1"), username="alice", password="right"
        )

# SPDX-License-Identifier: GPL-3.0-or-later
import os

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

import flaskfleet_demo
from flaskfleet_demo import create_app, static_dir

LEAK_ENV = "FLASKFLEET_DEMO_ENABLE_LEAK"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(LEAK_ENV, raising=False)
    monkeypatch.delenv("FLASK_" + LEAK_ENV, raising=False)
    yield
    flaskfleet_demo._LEAKED.clear()


@pytest.fixture
def app():
    app = create_app({"TESTING": True})
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def test_module_level_app_and_factory():
    assert flaskfleet_demo.app.name == "flaskfleet_demo"
    assert create_app() is not create_app()


def test_index(client):
    resp = client.get("/")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["name"] == "flaskfleet-demo"
    for ep in ("/healthz", "/whoami", "/io?ms=N", "/cpu?n=N"):
        assert ep in data["endpoints"]
    assert "/leak?mb=N" not in data["endpoints"]


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.is_json
    assert resp.get_json() == {"status": "ok", "pid": os.getpid()}


def test_static_dir_and_file(client):
    path = static_dir()
    assert os.path.isabs(path)
    assert os.path.isfile(os.path.join(path, "hello.txt"))
    assert flaskfleet_demo.app.static_folder == path
    resp = client.get("/static/hello.txt")
    assert resp.status_code == 200
    assert resp.data == b"flaskfleet static ok\n"
    resp.close()


def test_unknown_path_is_json_404(client):
    resp = client.get("/nope")
    assert resp.status_code == 404
    assert resp.get_json()["status"] == 404


def test_whoami_remote_addr(client):
    resp = client.get("/whoami", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["remote_addr"] == "203.0.113.7"
    assert data["scheme"] == "http"
    assert data["host"] == "localhost"
    assert data["url_root"] == "http://localhost/"
    assert data["external_url"] == "http://localhost/whoami"
    assert data["is_secure"] is False
    assert data["pid"] == os.getpid()
    assert data["debug"] is False
    assert data["headers"] == {"Host": "localhost"}


def test_whoami_https_base_url(client):
    resp = client.get("/whoami", base_url="https://example.test")
    data = resp.get_json()
    assert data["scheme"] == "https"
    assert data["host"] == "example.test"
    assert data["url_root"] == "https://example.test/"
    assert data["external_url"] == "https://example.test/whoami"
    assert data["is_secure"] is True


def test_whoami_without_proxyfix_ignores_forwarded_headers(client):
    resp = client.get(
        "/whoami",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"},
    )
    data = resp.get_json()
    assert data["remote_addr"] == "127.0.0.1"
    assert data["scheme"] == "http"
    assert data["headers"]["X-Forwarded-For"] == "198.51.100.9"


def test_whoami_behind_proxyfix(app):
    # This is how the role's generated wrapper module uses the app.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    client = app.test_client()
    resp = client.get(
        "/whoami",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "demo.example.test",
            "X-Forwarded-Port": "443",
        },
    )
    data = resp.get_json()
    assert data["remote_addr"] == "203.0.113.7"
    assert data["scheme"] == "https"
    assert data["is_secure"] is True
    assert data["host"] == "demo.example.test"
    assert data["url_root"] == "https://demo.example.test/"
    assert data["external_url"] == "https://demo.example.test/whoami"
    assert data["headers"]["X-Forwarded-Host"] == "demo.example.test"
    assert data["headers"]["X-Forwarded-Port"] == "443"


def test_whoami_proxyfix_trusts_only_last_hop(app):
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    resp = app.test_client().get(
        "/whoami",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "10.6.6.6, 203.0.113.7"},
    )
    assert resp.get_json()["remote_addr"] == "203.0.113.7"


def test_io_default(client):
    resp = client.get("/io")
    assert resp.status_code == 200
    assert resp.get_json() == {"slept_ms": 50, "pid": os.getpid()}


@pytest.mark.parametrize("ms", [0, 20])
def test_io_value(client, ms):
    resp = client.get(f"/io?ms={ms}")
    assert resp.status_code == 200
    assert resp.get_json()["slept_ms"] == ms


@pytest.mark.parametrize("ms", ["abc", "-1", "10001", "1.5"])
def test_io_invalid(client, ms):
    resp = client.get(f"/io?ms={ms}")
    assert resp.status_code == 400
    assert "ms" in resp.get_json()["error"]


def test_cpu_default(client):
    resp = client.get("/cpu")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["n"] == 20000
    assert data["primes_below_n"] == 2262
    assert data["pid"] == os.getpid()
    assert data["elapsed_ms"] >= 0


@pytest.mark.parametrize("n,expected", [(1, 0), (2, 0), (3, 1), (10, 4), (100, 25)])
def test_cpu_small(client, n, expected):
    resp = client.get(f"/cpu?n={n}")
    assert resp.status_code == 200
    assert resp.get_json()["primes_below_n"] == expected


@pytest.mark.parametrize("n", ["x", "0", "5000001", ""])
def test_cpu_invalid(client, n):
    resp = client.get(f"/cpu?n={n}")
    if n == "":  # empty means default
        assert resp.status_code == 200
    else:
        assert resp.status_code == 400
        assert "n" in resp.get_json()["error"]


def test_leak_disabled_by_default(client):
    resp = client.get("/leak?mb=1")
    assert resp.status_code == 404
    assert flaskfleet_demo._LEAKED == []


def test_leak_disabled_with_falsy_value(monkeypatch):
    monkeypatch.setenv(LEAK_ENV, "no")
    resp = create_app().test_client().get("/leak?mb=1")
    assert resp.status_code == 404


@pytest.mark.parametrize("value", ["1", "true", "YES", "True"])
def test_leak_enabled_via_env(monkeypatch, value):
    monkeypatch.setenv(LEAK_ENV, value)
    client = create_app().test_client()
    assert "/leak?mb=N" in client.get("/").get_json()["endpoints"]
    resp = client.get("/leak?mb=1")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["leaked_mb_total"] == 1
    assert data["pid"] == os.getpid()
    if os.path.exists("/proc/self/status"):
        assert isinstance(data["rss_kb"], int) and data["rss_kb"] > 1024
    resp = client.get("/leak?mb=1")
    assert resp.get_json()["leaked_mb_total"] == 2
    assert len(flaskfleet_demo._LEAKED) == 2
    buf = flaskfleet_demo._LEAKED[0]
    assert len(buf) == 1024 * 1024
    assert buf[0] == buf[4096] == buf[-4096] == 0xA5  # pages were touched


def test_leak_enabled_via_flask_prefixed_env(monkeypatch):
    monkeypatch.setenv("FLASK_" + LEAK_ENV, "true")
    resp = create_app().test_client().get("/leak?mb=1")
    assert resp.status_code == 200


@pytest.mark.parametrize("mb", ["0", "4097", "lots"])
def test_leak_invalid(monkeypatch, mb):
    monkeypatch.setenv(LEAK_ENV, "1")
    resp = create_app().test_client().get(f"/leak?mb={mb}")
    assert resp.status_code == 400
    assert flaskfleet_demo._LEAKED == []


def test_method_not_allowed_is_json(client):
    resp = client.post("/healthz")
    assert resp.status_code == 405
    assert resp.get_json()["status"] == 405


def test_env_echo_is_off_by_default(client, monkeypatch):
    monkeypatch.setenv("FLASKFLEET_DEMO_ECHO_X", "value")
    assert client.get("/env/FLASKFLEET_DEMO_ECHO_X").status_code == 404


@pytest.mark.parametrize("name, status", [("FLASKFLEET_DEMO_ECHO_X", 200), ("PATH", 404), ("FLASKFLEET_DEMO_ECHO_MISSING", 404)])
def test_env_echo_shows_only_its_own_variables(monkeypatch, name, status):
    value = "` $( ) \" ' \\ % ; # spaces\nGrüße ✓"
    monkeypatch.setenv("FLASKFLEET_DEMO_ECHO_X", value)
    monkeypatch.setenv("FLASKFLEET_DEMO_ENABLE_ENV_ECHO", "1")
    response = create_app({"TESTING": True}).test_client().get(f"/env/{name}")
    assert response.status_code == status
    if status == 200:
        assert response.get_json()["value"] == value
        assert bytes.fromhex(response.get_json()["utf8_hex"]) == value.encode()


def test_task_endpoints_say_when_no_broker_is_configured(client, monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    resp = client.post("/tasks/wait?ms=10")
    assert resp.status_code == 503
    assert "CELERY_BROKER_URL" in resp.get_json()["error"]


def test_task_endpoints_check_their_parameters(client, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    assert client.post("/tasks/wait?ms=-1").status_code == 400
    assert client.post("/tasks/wait?ms=10&count=501").status_code == 400


def test_record_release_fails_when_asked_and_needs_a_broker(app, monkeypatch):
    runner = app.test_cli_runner()
    failed = runner.invoke(args=["record-release", "--fail"])
    assert failed.exit_code == 1 and "failed, as asked" in failed.output
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    assert runner.invoke(args=["record-release"]).exit_code != 0

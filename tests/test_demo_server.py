"""`make demo` serves with `manage.py serve_demo`: SQLite, and a real Celery worker on a
broker in a folder. Retrain from the admin returns at once and the run finishes in the
background, its progress readable meanwhile."""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from tests.support import ROOT, wait_for


class Browser:
    """Just enough of a browser for Django's admin: cookies, and the CSRF token on posts."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str):
        return self.opener.open(self.base_url + path, timeout=30)

    def post(self, path: str, data: dict):
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(
            self.base_url + path, body, headers={"Referer": self.base_url + path}
        )
        return self.opener.open(request, timeout=30)


def test_demo_server_retrains_in_the_background(tmp_path, small_catalog, backbone_checkpoint,
                                                manage_py):  # fmt: skip
    # The embedded default: no database, broker or secret key set (the demo makes its own key).
    unset = {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "OUTFITS_PRODUCTION"}
    env = {key: value for key, value in os.environ.items() if key not in unset} | {
        "OUTFITS_VAR_DIR": str(tmp_path / "var"),
        "OUTFITS_PRETRAINED": str(backbone_checkpoint.path),
        "DJANGO_SUPERUSER_PASSWORD": "a-long-password",
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
    }
    manage_py(env, "migrate", "--noinput")
    manage_py(env, "import_catalog", str(small_catalog.products_csv))
    manage_py(env, "import_outfits", str(small_catalog.outfits_csv))
    manage_py(env, "createsuperuser", "--noinput", "--username", "staff", "--email", "s@x.org")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve_demo", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        browser = Browser(f"http://127.0.0.1:{port}")

        def login_page_up() -> bool:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                return browser.get("/admin/login/").status == 200
            except OSError:
                return False

        wait_for(login_page_up, "the demo server", timeout=60)
        browser.post(
            "/admin/login/", {"username": "staff", "password": "a-long-password", "next": "/admin/"}
        )
        started = time.monotonic()
        response = browser.post(
            "/admin/embeddings/modelversion/retrain/",
            {"pretrained": str(backbone_checkpoint.path), "epochs": 40, "unfrozen_blocks": 0},
        )
        answered_in = time.monotonic() - started
        run_id = re.search(r"/trainingrun/(\d+)/change/", response.url).group(1)
        states = []

        def finished() -> dict | None:
            state = json.loads(browser.get(f"/admin/embeddings/trainingrun/{run_id}/state/").read())
            states.append(state["status"])
            return state if state["finished"] else None

        state = wait_for(finished, "the run to finish", timeout=300, every=0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert state["status"] == "succeeded", state["html"]
    assert "trained and activated" in state["html"]
    # The click was answered before the training ran: the page then saw it queued or running.
    assert states[0] in {"queued", "running"}, (answered_in, states[:3])

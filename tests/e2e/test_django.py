"""A real application behind ActAs: Django 5.2's admin under gunicorn (tests/django_app, with
the settings the README's "Putting ActAs in front of Django" shows), driven by headless
Chromium as people use it. Screenshots go to tests/artifacts/django/."""
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser import ARTIFACTS, chromium_driver, sign_in
from conftest import PASSWORD, Proxy, free_port, import_users, run, wait_for

APP = Path(__file__).resolve().parents[1] / "django_app"
SHOTS = ARTIFACTS / "django"
NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
USERS = [
    {"username": "admin", "name": "Ada Admin", "email": "admin@example.com", "role": "super_admin", "org_unit": "acme", "last_login": NOW},
    {"username": "alice", "name": "Alice Example", "email": "alice@example.com", "role": "employee", "org_unit": "acme/emea",
     "last_login": NOW},
]
REASON = "Ticket 4711: Alice cannot save her notes"

# Django's own users (RemoteUserBackend would create them bare): the administrator is a
# superuser, Alice is staff who may manage notes. 60 notes make the changelist scroll.
SEED = """
from django.contrib.auth.models import Permission, User
from notes.models import Note
admin = User.objects.create_superuser("admin", "admin@example.com", None)
alice = User.objects.create_user("alice", "alice@example.com", None, is_staff=True)
alice.user_permissions.set(Permission.objects.filter(content_type__app_label="notes"))
Note.objects.bulk_create([Note(title=f"Seed note {i}", created_by="seed") for i in range(60)])
"""


class Gunicorn:
    """The Django site under gunicorn on a free port, with its own SQLite database."""

    def __init__(self, tmp, port, origin):
        self.port = port
        self.db = tmp / "django.sqlite3"
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "actas_site.settings", "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
                    "DJANGO_DB": str(self.db), "DJANGO_ALLOWED_HOSTS": "localhost", "DJANGO_CSRF_TRUSTED_ORIGINS": origin}
        self.manage("migrate", "--noinput")
        self.manage("shell", "-c", SEED)
        self.log_path = tmp / "gunicorn.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
             "--workers", "1", "--threads", "8", "actas_site.wsgi"],
            cwd=APP, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(self.ready, timeout=30, what="gunicorn")
        except BaseException:
            self.stop()
            raise

    def manage(self, *args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=APP, env=self.env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    def ready(self):
        assert self.process.poll() is None, self.log_path.read_text()
        try:
            # Straight to gunicorn: any answer from Django (here 400, 127.0.0.1 is not an allowed host) means it serves.
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/whoami/", timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def notes(self, created_by):
        with sqlite3.connect(self.db) as db:
            return [row[0] for row in db.execute("SELECT title FROM notes_note WHERE created_by = ? ORDER BY id", (created_by,))]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def django_site(tmp_path_factory):
    """ActAs in front of gunicorn+Django: (proxy, django, base URL). Impersonation mode is
    `choose`, so each test picks read-write or read-only."""
    tmp = tmp_path_factory.mktemp("django")
    (tmp / "proxy").mkdir()
    gunicorn_port = free_port()
    proxy = Proxy(tmp / "proxy", gunicorn_port, {
        "auth.public_paths": [], "auth.methods": ["password", "token"], "impersonation.mode": "choose"}, start=False)
    base = f"https://localhost:{proxy.https_port}"
    django = Gunicorn(tmp, gunicorn_port, base)
    try:
        proxy.start()
        import_users(proxy, USERS)
        run(["consent", "grant", "alice", "--hours", "24", "--config", str(proxy.config_path)])
        print(f"\nscreenshots: {SHOTS}")
        yield proxy, django, base
    finally:
        proxy.stop()
        django.stop()


@pytest.fixture
def browsers():
    """Headless Chromium windows, each its own browser profile; all quit after the test."""
    opened = []

    def open_one():
        driver = chromium_driver()
        opened.append(driver)
        return driver
    yield open_one
    for driver in opened:
        driver.quit()


# ---- helpers -------------------------------------------------------------------------------------

def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def until(driver, predicate, timeout=15):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(predicate)


def fetch_json(driver, path):
    return driver.execute_script("return fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.json())", path)


def me(driver):
    return fetch_json(driver, "/.actas/api/v1/me")


def whoami(driver):
    """What Django believes about this browser: {user, session}."""
    return fetch_json(driver, "/whoami/")


def start(driver, target="alice", mode="read-write"):
    """Starts acting as `target` through the JSON API from the signed-in page; (status, body)."""
    return driver.execute_script(
        "return fetch('/.actas/api/v1/me').then(r => r.json()).then(me => fetch('/.actas/api/v1/impersonation', {method: 'POST',"
        " headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},"
        " body: JSON.stringify({target: arguments[0], reason: arguments[1], mode: arguments[2]})}))"
        ".then(r => r.json().then(b => [r.status, b]))", target, REASON, mode)


def banner_text(driver):
    return " ".join((driver.execute_script(
        "var b = document.querySelector('actas-banner'); return b ? (b.shadowRoot || b).textContent : ''") or "").split())


def exit_from_banner(driver):
    button = driver.execute_script(
        "var b = document.querySelector('actas-banner'); return (b.shadowRoot || b).querySelector('form[data-actas=exit] button')")
    button.click()
    until(driver, lambda d: me(d)["impersonation"] is None)


def app_cookies(driver):
    """The application's cookies in this browser (HttpOnly ones too), by name."""
    return {c["name"]: c["value"] for c in driver.get_cookies() if not c["name"].startswith("__Host-actas")}


def script_cookies(driver):
    """The cookies the page's scripts can read."""
    pairs = [c.split("=", 1) for c in driver.execute_script("return document.cookie").split("; ") if "=" in c]
    return {name: value for name, value in pairs}


def click_and_read(driver, page, base):
    """Opens one of the app's script pages, presses its button, returns what the script got."""
    from selenium.webdriver.common.by import By
    driver.get(base + page)
    driver.find_element(By.ID, "send").click()
    return until(driver, lambda d: d.find_element(By.ID, "result").text or False)


def signed_in_admin(browsers, base):
    driver = browsers()
    sign_in(driver, base, "admin", PASSWORD)
    return driver


# ---- the suite -------------------------------------------------------------------------------------

def test_acting_in_the_admin_ajax_and_xsrf_pages_then_exit_restores_the_administrators_own_session(django_site, browsers):
    from selenium.webdriver.common.by import By
    proxy, django, base = django_site
    driver = signed_in_admin(browsers, base)
    # The administrator's own Django session and cookies, as the app set them.
    driver.get(base + "/")
    assert "Signed in to Django as admin" in driver.find_element(By.ID, "who").text
    assert click_and_read(driver, "/xsrf/", base).startswith("200")
    assert click_and_read(driver, "/ajax/", base).startswith("200")
    own = whoami(driver)
    assert own["user"] == "admin" and own["session"]
    before = app_cookies(driver)
    assert {"sessionid", "csrftoken", "XSRF-TOKEN"} <= set(before), before

    status, body = start(driver)
    assert status == 201, body
    assert whoami(driver)["user"] == "alice"

    # The admin's CSRF-protected add form, as Alice.
    driver.get(base + "/admin/notes/note/add/")
    assert "You are acting as Alice Example (alice)" in banner_text(driver)
    driver.find_element(By.ID, "id_title").send_keys("Made through the admin form")
    driver.find_element(By.NAME, "_save").click()
    until(driver, lambda d: d.current_url == base + "/admin/notes/note/")
    assert "was added successfully" in driver.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    shot(driver, "01-admin-form-as-alice")
    assert "Made through the admin form" in django.notes("alice")

    # Django's documented AJAX pattern: csrftoken read from document.cookie, sent as X-CSRFToken.
    ajax = click_and_read(driver, "/ajax/", base)
    shot(driver, "02-ajax-as-alice")
    assert ajax.startswith("200"), f"AJAX POST while impersonating: {ajax} (scripts cannot read the app's csrftoken)"
    assert json.loads(ajax.split(" ", 1)[1])["created_by"] == "alice"
    # Scripts see the app's cookie as the app set it for Alice's session, not the administrator's.
    assert script_cookies(driver).get("csrftoken") not in (None, before["csrftoken"])

    # Angular's pattern: XSRF-TOKEN cookie echoed as X-XSRF-TOKEN.
    xsrf = click_and_read(driver, "/xsrf/", base)
    shot(driver, "03-xsrf-as-alice")
    assert xsrf.startswith("200"), f"X-XSRF-TOKEN POST while impersonating: {xsrf}"
    assert json.loads(xsrf.split(" ", 1)[1])["created_by"] == "alice"

    # Exit: the administrator's own Django session and cookies, exactly as before.
    driver.get(base + "/")
    exit_from_banner(driver)
    driver.get(base + "/")
    assert "Signed in to Django as admin" in driver.find_element(By.ID, "who").text
    assert whoami(driver) == own
    after = app_cookies(driver)
    for name in ("sessionid", "csrftoken", "XSRF-TOKEN"):
        assert after.get(name) == before[name], (name, before, after)
    assert script_cookies(driver)["csrftoken"] == before["csrftoken"]
    # And the administrator's own scripts work again with their own tokens.
    assert json.loads(click_and_read(driver, "/ajax/", base).split(" ", 1)[1])["created_by"] == "admin"
    assert json.loads(click_and_read(driver, "/xsrf/", base).split(" ", 1)[1])["created_by"] == "admin"
    shot(driver, "04-after-exit-as-admin")


def test_read_only_refusal_shows_the_banner_and_a_way_back(django_site, browsers):
    from selenium.webdriver.common.by import By
    proxy, django, base = django_site
    driver = signed_in_admin(browsers, base)
    status, body = start(driver, mode="read-only")
    assert status == 201 and body["mode"] == "read-only", body
    try:
        driver.get(base + "/admin/notes/note/add/")
        driver.find_element(By.ID, "id_title").send_keys("Must not be saved")
        driver.find_element(By.NAME, "_save").click()
        until(driver, lambda d: "read-only" in d.find_element(By.TAG_NAME, "body").text)
        shot(driver, "05-read-only-refusal")
        text = banner_text(driver)
        assert "You are acting as Alice Example (alice)" in text and "Exit" in text
        assert "Must not be saved" not in django.notes("alice")
        # The way back leads to the form the administrator came from.
        driver.find_element(By.CSS_SELECTOR, "a[data-actas-back]").click()
        until(driver, lambda d: d.current_url == base + "/admin/notes/note/add/")
        assert driver.find_element(By.ID, "id_title")
    finally:
        exit_from_banner(driver)


def test_the_apps_log_out_signs_out_of_actas(django_site, browsers):
    from selenium.webdriver.common.by import By
    proxy, django, base = django_site
    # The app's own link to /.actas/logout?rd=/: one button, then signed out and asked to sign in.
    driver = signed_in_admin(browsers, base)
    driver.get(base + "/")
    driver.find_element(By.ID, "logout").click()
    until(driver, lambda d: "/.actas/logout" in d.current_url)
    shot(driver, "06-actas-sign-out-page")
    driver.find_element(By.CSS_SELECTOR, "main form[action='/.actas/logout'] button").click()
    until(driver, lambda d: "/.actas/login" in d.current_url)
    driver.get(base + "/")
    until(driver, lambda d: "/.actas/login" in d.current_url)  # not signed straight back in

    # Django admin's own "Log out" (a POST): LOGOUT_REDIRECT_URL sends the browser to the same page.
    sign_in(driver, base, "admin", PASSWORD)
    driver.get(base + "/admin/")
    driver.find_element(By.CSS_SELECTOR, "#logout-form button").click()
    until(driver, lambda d: "/.actas/logout" in d.current_url)
    driver.find_element(By.CSS_SELECTOR, "main form[action='/.actas/logout'] button").click()
    until(driver, lambda d: "/.actas/login" in d.current_url)
    assert driver.execute_script("return fetch('/.actas/api/v1/me').then(r => r.status)") == 401


def test_two_browsers_of_one_administrator(django_site, browsers):
    from selenium.webdriver.common.by import By
    proxy, django, base = django_site
    first = signed_in_admin(browsers, base)
    assert start(first)[0] == 201
    try:
        second = signed_in_admin(browsers, base)
        # The second sign-in browses as the administrator, not as Alice.
        second.get(base + "/")
        assert "Signed in to Django as admin" in second.find_element(By.ID, "who").text, "the second browser acts as Alice too"
        assert not second.find_elements(By.TAG_NAME, "actas-banner")
        assert me(second)["impersonation"] is None
        status, body = start(second)
        assert status == 403 and body["error"] == "chaining", body
        # Signing out there leaves the first browser's impersonation alone.
        second.get(base + "/.actas/logout")
        second.find_element(By.CSS_SELECTOR, "main form[action='/.actas/logout'] button").click()
        until(second, lambda d: "/.actas/login" in d.current_url)
        first.get(base + "/")
        assert "Signed in to Django as alice" in first.find_element(By.ID, "who").text
        assert "You are acting as Alice Example (alice)" in banner_text(first)
        shot(first, "07-first-browser-still-acting")
    finally:
        first.get(base + "/")
        exit_from_banner(first)


def test_sticky_sidebar_stays_below_the_banner(django_site, browsers):
    """Django admin's navigation sidebar is `position: sticky; top: 0`. Scrolled, it must sit
    below the fixed banner, not under it."""
    proxy, django, base = django_site
    driver = signed_in_admin(browsers, base)
    measure = ("window.scrollTo(0, 800); return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => {"
               " var s = document.getElementById('nav-sidebar').getBoundingClientRect();"
               " var b = document.querySelector('actas-banner'); var br = b ? b.getBoundingClientRect() : null;"
               " var hit = document.elementFromPoint(s.left + 10, s.top + 5);"
               " r({scrollY: window.scrollY, sidebarTop: s.top, bannerBottom: br ? br.bottom : 0,"
               "    sidebarOnTop: document.getElementById('nav-sidebar').contains(hit)}); })))")
    driver.get(base + "/admin/notes/note/")
    alone = driver.execute_script(measure)
    assert alone["scrollY"] > 0 and alone["sidebarTop"] == 0, alone  # the app as it is, without a banner
    assert start(driver)[0] == 201
    try:
        driver.get(base + "/admin/notes/note/")
        until(driver, lambda d: d.execute_script("return !!document.querySelector('actas-banner[data-live]')"))
        shown = driver.execute_script(measure)
        shot(driver, "08-changelist-scrolled-with-banner")
        print(f"sticky sidebar: without banner {alone}; with banner {shown}")
        assert shown["scrollY"] > 0 and shown["bannerBottom"] >= 40, shown
        assert shown["sidebarTop"] >= shown["bannerBottom"] - 0.5, f"the sidebar slides under the banner: {shown}"
        assert shown["sidebarOnTop"], shown
    finally:
        exit_from_banner(driver)

"""A real browser signs in through the form and sees the demo app with its identity."""
import json

import pytest

from browser import chromium_driver, screenshot
from conftest import PASSWORD, Proxy, free_port, import_users


@pytest.fixture
def demo_proxy(tmp_path):
    demo_port = free_port()
    proxy = Proxy(tmp_path, demo_port, {"demo.enabled": True, "auth.public_paths": ["/static/*"]})
    yield proxy
    proxy.stop()


def test_browser_signs_in_through_the_form_and_sees_its_identity(demo_proxy):
    proxy = demo_proxy
    import_users(proxy, [{"username": "alice", "name": "Alice Andersen", "email": "alice@example.com",
                          "role": "employee", "groups": ["sales"]}])
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver()
    try:
        base = f"https://localhost:{proxy.https_port}"
        driver.get(base + "/form")
        # Not signed in: the proxy sends the browser to the sign-in page, remembering where it was going.
        WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "username")))
        assert "/.actas/login" in driver.current_url and "rd=" in driver.current_url
        driver.find_element(By.ID, "username").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        screenshot(driver, "identity-login-form")
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

        try:
            WebDriverWait(driver, 10).until(lambda d: d.current_url == base + "/form")
        except Exception:
            raise AssertionError(f"after sign-in: {driver.current_url}\n{driver.page_source[:3000]}")
        driver.get(base + "/")
        table = driver.find_element(By.TAG_NAME, "table").text
        assert "X-Forwarded-User alice" in table
        assert "X-Forwarded-Email alice@example.com" in table
        assert "X-Forwarded-Groups sales" in table
        assert '"preferred_username" : "alice"' in driver.page_source
        screenshot(driver, "identity-demo-page")

        # The session cookie is HttpOnly: page scripts cannot read it.
        assert "__Host-actas_session" not in driver.execute_script("return document.cookie")
        cookie = driver.get_cookie("__Host-actas_session")
        assert cookie and cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        # The console page knows who we are, and signing out works from the browser.
        driver.get(base + "/.actas/")
        assert "Alice Andersen" in driver.find_element(By.TAG_NAME, "h1").text
        driver.find_element(By.CSS_SELECTOR, "form[action='/.actas/logout'] button").click()
        WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "username")))
        driver.get(base + "/api/whoami")
        assert "/.actas/login" in driver.current_url
    finally:
        driver.quit()

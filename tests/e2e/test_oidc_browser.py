"""OIDC sign-in in a real browser (headless Chromium): the app's page sends the person to the
sign-in page, its "Sign in with …" link to the provider's page, the provider's button back
through the callback to the page they asked for, signed in; signing out goes to the provider."""
import json

from browser import chromium_driver, screenshot
from conftest import wait_for
from oidc_fixtures import log_events, oidc_proxy, provider  # noqa: F401 (fixtures)


def test_browser_signs_in_through_the_provider_and_out_again(oidc_proxy, provider, upstream):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    proxy = oidc_proxy(methods=("oidc",))
    base = f"https://localhost:{proxy.https_port}"
    driver = chromium_driver()
    try:
        driver.get(base + "/reports/weekly?week=49")
        WebDriverWait(driver, 10).until(lambda d: "/.actas/login" in d.current_url)
        # Only the provider's link: password sign-in is off.
        assert not driver.find_elements(By.ID, "password")
        link = driver.find_element(By.ID, "oidc-sign-in")
        assert link.text == "Sign in with localhost"
        screenshot(driver, "oidc-login-page")
        link.click()
        WebDriverWait(driver, 10).until(lambda d: d.current_url.startswith(provider.issuer + "/authorize"))
        driver.find_element(By.ID, "approve").click()
        WebDriverWait(driver, 10).until(lambda d: d.current_url == base + "/reports/weekly?week=49")
        assert json.loads(driver.find_element(By.TAG_NAME, "body").text)["path"] == "/reports/weekly"
        me = driver.execute_script("return fetch('/.actas/api/v1/me').then(r => r.json())")
        assert me["user"]["username"] == "alice"
        record = upstream.requests()[-1]
        assert dict((k.lower(), v) for k, v in record["headers"])["x-forwarded-user"] == "alice"
        # The IdP's tokens never reach the browser: no readable cookie carries a JWT.
        assert all(c["value"].count(".") < 2 for c in driver.get_cookies())
        wait_for(lambda: [r["method"] for r in log_events(proxy, "login")] == ["oidc"], what="the login event")

        driver.get(base + "/.actas/logout")
        driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        WebDriverWait(driver, 10).until(lambda d: d.current_url.startswith(provider.issuer + "/end_session"))
        screenshot(driver, "oidc-signed-out-at-provider")
        assert provider.stats()["end_session"][-1]["post_logout_redirect_uri"] == base + "/.actas/login"
        driver.get(base + "/.actas/api/v1/me")
        assert "unauthenticated" in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()

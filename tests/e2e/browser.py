"""A real browser (Debian's chromium, headless, through chromedriver) for the tests that
must see what people see."""
import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "tests" / "artifacts"


def chromium_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail("chromium and chromedriver are required (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    # The test CA is not in the system store; the proxy's certificate is still real TLS.
    options.accept_insecure_certs = True
    return webdriver.Chrome(service=Service(driver_path), options=options)


def screenshot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def sign_in(driver, base, username, password):
    """Signs in through the real form and waits until the browser has left it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(base + "/.actas/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "/.actas/login" not in d.current_url)


def start_impersonating(driver, target, reason="Ticket 4711: the report page is blank", duration=None):
    """Starts acting as `target` through the JSON API, from the signed-in page; returns the status."""
    csrf = driver.execute_script("return fetch('/.actas/api/v1/me').then(r => r.json()).then(j => j.csrf_token)")
    body = {"target": target, "reason": reason, **({"duration": duration} if duration else {})}
    return driver.execute_script(
        "return fetch('/.actas/api/v1/impersonation', {method: 'POST', headers: {'Content-Type': 'application/json',"
        " 'X-CSRF-Token': arguments[0]}, body: JSON.stringify(arguments[1])}).then(r => r.status)", csrf, body)

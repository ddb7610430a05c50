"""A real browser speaks HTTP/2 to the proxy (SPEC §10.4) and sees the impersonation banner
(SPEC §7) on an app page; the page's request record says "proto":"h2"."""
from conftest import PASSWORD, Proxy, Upstream, header_values
from test_http2 import CONFIG, record_of, seen_by_upstream, setup_users


def test_chromium_negotiates_h2_and_sees_the_banner(tmp_path):
    from browser import chromium_driver, screenshot, sign_in, start_impersonating
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upstream = Upstream(tmp_path)
    proxy = Proxy(tmp_path, upstream.port, CONFIG)
    try:
        setup_users(proxy)
        driver = chromium_driver()
        try:
            base = f"https://localhost:{proxy.https_port}"
            sign_in(driver, base, "admin", PASSWORD)
            assert start_impersonating(driver, "emp") == 201
            driver.get(base + "/page?kind=length")
            protocol = driver.execute_script("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
            assert protocol == "h2"
            banner = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.TAG_NAME, "actas-banner"))
            text = " ".join(driver.execute_script("return arguments[0].shadowRoot.textContent", banner).split())
            assert "You are acting as Emma Employee (emp)" in text, text
            assert "hello page" in driver.find_element(By.TAG_NAME, "body").text
            screenshot(driver, "http2-banner")
            [record] = seen_by_upstream(upstream, "/page")
            assert header_values(record, "x-forwarded-user") == ["emp"]
            assert header_values(record, "x-impersonator-user") == ["admin"]
            [request_id] = header_values(record, "x-request-id")
            logged = record_of(proxy, request_id)
            assert logged["proto"] == "h2" and logged["user"] == "emp" and logged["impersonator"] == "admin"
        finally:
            driver.quit()
    finally:
        proxy.stop()
        upstream.stop()

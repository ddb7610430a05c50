"""SIGHUP reloads `[auth.oidc]` (README "Signals"): the next sign-in uses the new settings; a
new file whose provider settings cannot be loaded keeps the running ones and says why."""
import signal

from conftest import wait_for
from oidc_fixtures import Browser, oidc_config, provider  # noqa: F401 (fixtures)
from test_oidc import refused


def send_hangup(proxy, settings, outcome):
    """Rewrites proxy.conf with `settings`, sends SIGHUP, returns once the log says `outcome`."""
    before = proxy.stderr_path.read_text().count(outcome)
    proxy.write_config(settings)
    proxy.process.send_signal(signal.SIGHUP)
    wait_for(lambda: proxy.stderr_path.read_text().count(outcome) > before, what=outcome)


def test_sighup_reloads_auth_oidc_and_a_bad_one_keeps_the_running_one(make_proxy, provider, tmp_path):
    settings = oidc_config(provider, tmp_path)
    proxy = make_proxy(settings)
    assert Browser(proxy, provider).sign_in().status == 303
    # default_role "" refuses a user whose claims map to no role (SPEC §10.3).
    send_hangup(proxy, {**settings, "auth.oidc.default_role": ""}, f"reloaded {proxy.config_path}")
    provider.set_user(sub="sub-new", preferred_username="newbie", email="newbie@example.com", email_verified=True)
    refused(Browser(proxy, provider).sign_in(), "no_role", 403)
    # A ca_file that holds no certificate: the reload fails, the running provider settings stay.
    garbage = tmp_path / "not-a-ca.pem"
    garbage.write_text("not a certificate\n")
    send_hangup(proxy, {**settings, "auth.oidc.ca_file": str(garbage)}, "reload failed, keeping the running configuration")
    assert f"auth.oidc: cannot load the provider's trusted roots (ca_file {garbage}" in proxy.stderr_path.read_text()
    refused(Browser(proxy, provider).sign_in(), "no_role", 403)
    # Back to the first settings.
    send_hangup(proxy, settings, f"reloaded {proxy.config_path}")
    assert Browser(proxy, provider).sign_in().status == 303

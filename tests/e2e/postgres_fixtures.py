"""PostgreSQL for the end-to-end tests (SPEC §10.2): the server scripts/test starts
(ACTAS_TEST_POSTGRES_URL, and ACTAS_TEST_POSTGRES_DIR for stopping and starting it), a fresh
database per test, and two `actas serve` on one database."""
import os
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import Proxy, Upstream, wait_for
from test_impersonation import config, setup_site

POSTGRES_URL = os.environ.get("ACTAS_TEST_POSTGRES_URL", "")
POSTGRES_DIR = os.environ.get("ACTAS_TEST_POSTGRES_DIR", "")
CLUSTER = Path(__file__).resolve().parents[2] / "scripts" / "postgres-cluster"


def psql(url, sql):
    result = subprocess.run(["psql", url, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def with_database(url, name):
    return urllib.parse.urlsplit(url)._replace(path="/" + name).geturl()


def cluster(command):
    """Stops or starts the test cluster (scripts/postgres-cluster; as root it runs pg_ctl as postgres)."""
    subprocess.run([str(CLUSTER), command, POSTGRES_DIR], check=True, timeout=90)


def listeners(url, proxy=None):
    """Backends LISTENing for one instance (application_name `actas listen <host>:<admin port>`)."""
    name = f"actas listen %:{proxy.admin_port}" if proxy else "actas listen %"
    rows = psql(url, f"SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '{name}'")
    return [int(pid) for pid in rows.split()]


@pytest.fixture(scope="session")
def postgres_server():
    if not POSTGRES_URL:
        pytest.skip("ACTAS_TEST_POSTGRES_URL is not set (scripts/test always starts a server and sets it)")
    return POSTGRES_URL


@pytest.fixture
def pg_database(postgres_server):
    """A fresh, empty database: its URL. Request it before `make_proxy` (earlier in the
    argument list): fixtures are torn down in reverse, so the proxies stop before the database
    is dropped, rather than each spending its whole stop timeout on a store that is gone."""
    name = "actas_e2e_" + uuid.uuid4().hex[:16]
    psql(postgres_server, f"CREATE DATABASE {name}")
    yield with_database(postgres_server, name)
    if POSTGRES_DIR:
        # A test that stopped the server must not leave it stopped for the next.
        if subprocess.run(["psql", postgres_server, "-X", "-c", "SELECT 1"], capture_output=True).returncode != 0:
            cluster("start")
    psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_config(url, **extra):
    return config(**{"store.url": url, **extra})


def make_pair(make_proxy, url, site_ready=False, **extra):
    """Two `actas serve` on one PostgreSQL database, with the impersonation test directory
    (`site_ready`: the database already holds it, as `pg_site_database` does)."""
    first = make_proxy(pg_config(url, **extra))
    if not site_ready:
        setup_site(first)
    return first, make_proxy(pg_config(url, **extra))


@pytest.fixture(scope="session")
def pg_site_template(postgres_server, tmp_path_factory):
    """A database set up once per session exactly as `setup_site` sets one up (the CLI imports
    the users, grants consents, suspends one; a running proxy sees it), then used only as a
    template: in a debug build that setup is 10-30 s of password hashing per test."""
    name = "actas_e2e_site_" + uuid.uuid4().hex[:16]
    psql(postgres_server, f"CREATE DATABASE {name}")
    tmp = tmp_path_factory.mktemp("pg-site-template")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, pg_config(with_database(postgres_server, name)))
    try:
        setup_site(proxy)
    finally:
        proxy.stop()  # CREATE DATABASE … TEMPLATE needs the template without connections
        upstream.stop()
    yield name
    psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_site_database(pg_site_template, postgres_server):
    """A fresh database holding the impersonation test site (a copy of the template): its URL.
    Request it before `make_proxy`, like `pg_database`."""
    name = "actas_e2e_" + uuid.uuid4().hex[:16]
    psql(postgres_server, f"CREATE DATABASE {name} TEMPLATE {pg_site_template}")
    yield with_database(postgres_server, name)
    if POSTGRES_DIR and subprocess.run(["psql", postgres_server, "-X", "-c", "SELECT 1"], capture_output=True).returncode != 0:
        cluster("start")
    psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_pair(pg_site_database, make_proxy):
    return make_pair(make_proxy, pg_site_database, site_ready=True)


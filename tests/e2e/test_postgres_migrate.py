"""SPEC §10.2: `actas store migrate --from URL --to URL` moves a single-node installation onto
PostgreSQL: users, consents, tokens, keys and session records, all or nothing, counts printed.
An instance started on the copy serves the same people with the same credentials."""
import json
import subprocess

from conftest import ACTAS, clean_env, me
from postgres_fixtures import pg_config, pg_database, postgres_server, psql  # noqa: F401
from test_changes_acknowledged import cli, with_token
from test_impersonation import Admin, config, setup_site


def migrate(source, target):
    return subprocess.run([str(ACTAS), "store", "migrate", "--from", source, "--to", target],
                          capture_output=True, text=True, env=clean_env(), timeout=120)


def counts(output):
    return {name.strip(): int(value) for name, _, value in
            (line.partition(":") for line in output.splitlines()[1:]) if value.strip().isdigit()}


def test_sqlite_to_postgres_copies_everything_and_a_new_instance_serves_it(pg_database, make_proxy):
    single = make_proxy(config())
    setup_site(single)
    admin = Admin(single, "admin")
    session = admin.start("emp")[1]["id"]
    assert admin.fetch("/before-migrating").status == 200
    token = json.loads(cli(single, "tokens", "create", "emp", "--json").stdout)
    single.stop()
    sqlite_file = single.dir / "data" / "actas.db"

    result = migrate(f"sqlite:{sqlite_file}", pg_database)
    assert result.returncode == 0, result.stderr
    copied = counts(result.stdout)
    users = int(psql(pg_database, "SELECT count(*) FROM users"))
    assert copied["users"] == users and users > 5, result.stdout
    assert copied["impersonation sessions"] == 1 and copied["api tokens"] == 1 and copied["signing keys"] >= 1, result.stdout
    assert copied["consents"] == int(psql(pg_database, "SELECT count(*) FROM consents")) > 0
    assert copied["session records"] >= 1, result.stdout

    # The same people, credentials and session on an instance that only knows the copy.
    moved = make_proxy(pg_config(pg_database))
    assert with_token(moved, token["token"], "/after-migrating").status == 200
    assert me(moved, admin.cookie)["impersonation"]["id"] == session
    assert psql(pg_database, f"SELECT count(*) FROM impersonations WHERE id = '{session}'") == "1"


def test_into_a_database_that_has_users_copies_nothing(pg_database, make_proxy):
    single = make_proxy(config())
    setup_site(single)
    single.stop()
    sqlite_file = single.dir / "data" / "actas.db"
    assert migrate(f"sqlite:{sqlite_file}", pg_database).returncode == 0
    before = psql(pg_database, "SELECT count(*) FROM users")
    again = migrate(f"sqlite:{sqlite_file}", pg_database)
    assert again.returncode == 1 and "nothing was copied" in again.stderr, again
    assert psql(pg_database, "SELECT count(*) FROM users") == before


def test_bad_urls_are_refused_with_a_reason(tmp_path, pg_database):
    result = migrate("mysql://x", pg_database)
    assert result.returncode != 0 and "--from" in result.stderr, result
    result = migrate(f"sqlite:{tmp_path / 'missing.db'}", pg_database)
    assert result.returncode != 0 and "does not exist" in result.stderr, result
    result = migrate(f"sqlite:{tmp_path / 'missing.db'}", "postgres://actas@127.0.0.1:5432/db?sslmode=sometimes")
    assert result.returncode != 0 and "sslmode" in result.stderr, result

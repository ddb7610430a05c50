"""The directory and the CLI against hostile input (issue 21 items 9 and 10): org units with
`.`/`..` segments (refused everywhere, and never inside a scope even when already stored), and
terminal tricks (control, line-separator and bidi characters) refused at the door and escaped in
every human-readable output, while `--json` stays valid JSON."""
import json
import re
import sqlite3

from conftest import import_users, run
from test_impersonation import NOW, USERS, Admin, config

DOT_UNITS = ["acme/emea/../hq", "acme/emea/./x", "acme/emea/..", "./acme", "acme/emea/sales/."]
# C0, DEL, C1, line/paragraph separators and every bidi control the brief lists.
TRICKS = ["\x1b[31m", "\x07", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u061c", "\u200e", "\u200f",
          "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
RAW_TRICK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def cli(proxy, *args, check=False, **kwargs):
    return run([*args, "--config", str(proxy.config_path)], check=check, **kwargs)


# ---- item 9: dot segments ----------------------------------------------------------------------

def test_import_add_and_set_refuse_dot_segments_with_file_and_line(make_proxy):
    proxy = make_proxy(config())
    import_users(proxy, [{"username": "keep", "role": "employee", "org_unit": "acme/emea"}])
    for unit in DOT_UNITS:
        csv = proxy.dir / "dots.csv"
        csv.write_text(f"username,org_unit\nok1,acme/emea\nbad,{unit}\n")
        result = cli(proxy, "users", "import", str(csv))
        assert result.returncode != 0, (unit, result.stdout)
        assert f"{csv}:3:" in result.stderr and "org_unit" in result.stderr, result.stderr
        document = proxy.dir / "dots.json"
        document.write_text(json.dumps([{"username": "ok2", "org_unit": "acme"}, {"username": "bad", "org_unit": unit}], indent=1))
        result = cli(proxy, "users", "import", str(document))
        assert result.returncode != 0 and f"{document}:" in result.stderr and "org_unit" in result.stderr, result.stderr
        result = cli(proxy, "users", "add", "dotty", "--org-unit", unit)
        assert result.returncode != 0 and "org_unit" in result.stderr, result
        result = cli(proxy, "users", "set", "keep", "--org-unit", unit)
        assert result.returncode != 0 and "org_unit" in result.stderr, result
    # Nothing changed: all or nothing.
    users = json.loads(cli(proxy, "users", "list", "--json", check=True).stdout)
    assert [(u["username"], u["org_unit"]) for u in users] == [("keep", "acme/emea")]
    # Names that merely contain dots are fine.
    assert cli(proxy, "users", "set", "keep", "--org-unit", "acme/emea/v1.2/...x").returncode == 0


def test_scoped_admin_cannot_act_as_a_user_whose_stored_org_unit_has_dot_segments(make_proxy):
    proxy = make_proxy(config())
    dotty = {"username": "dotty", "role": "employee", "org_unit": "acme/emea/sales", "last_login": NOW}
    import_users(proxy, [u for u in USERS if u["username"] in ("admin", "hr")] + [dotty])
    cli(proxy, "consent", "grant", "dotty", "--hours", "24", check=True)
    # A row stored before the rule existed (or written by another tool): the scope check must
    # not treat it as inside acme/emea.
    proxy.stop()
    db = sqlite3.connect(proxy.dir / "data" / "actas.db")
    with db:
        db.execute("UPDATE users SET org_unit = 'acme/emea/../hq' WHERE username = 'dotty'")
    db.close()
    proxy.start()
    hr = Admin(proxy, "hr")
    response, body = hr.start("dotty")
    assert response.status == 403 and body["error"] == "scope", (response, body)
    # The unscoped super_admin is not affected by scope.
    response, body = Admin(proxy, "admin").start("dotty")
    assert response.status == 201, (response, body)


# ---- item 10: terminal tricks ------------------------------------------------------------------

def test_import_add_and_set_refuse_control_separator_and_bidi_characters(make_proxy):
    proxy = make_proxy(config())
    import_users(proxy, [{"username": "keep", "role": "employee"}])
    for trick in TRICKS:
        for field in ("name", "email", "groups", "org_unit"):
            value = f"acme/x{trick}y" if field == "org_unit" else f"x{trick}y"
            document = proxy.dir / "tricks.json"
            document.write_text(json.dumps([{"username": "fine"}, {"username": "bad", field: value}]))
            result = cli(proxy, "users", "import", str(document))
            assert result.returncode != 0 and field.rstrip("s") in result.stderr, (trick, field, result)
            assert not RAW_TRICK.search(result.stderr + result.stdout), (trick, field, result.stderr)
        csv = proxy.dir / "tricks.csv"
        csv.write_text(f"username,name\nfine,Fine\nbad,x{trick}y\n", encoding="utf-8", newline="")
        result = cli(proxy, "users", "import", str(csv))
        assert result.returncode != 0 and f"{csv}:3:" in result.stderr, (trick, result.stderr)
        for option in ("--name", "--email", "--groups", "--org-unit"):
            result = cli(proxy, "users", "set", "keep", option, f"a{trick}b")
            assert result.returncode != 0, (trick, option, result)
            assert not RAW_TRICK.search(result.stderr + result.stdout), (trick, option, result.stderr)
    users = json.loads(cli(proxy, "users", "list", "--json", check=True).stdout)
    assert [u["username"] for u in users] == ["keep"]


def test_every_human_readable_output_escapes_tricks_already_in_the_store(make_proxy):
    """Rows stored before the rule (or by another tool) are shown escaped in tables and errors,
    and `--json` stays valid JSON carrying the exact value."""
    proxy = make_proxy(config())
    import_users(proxy, [u for u in USERS if u["username"] in ("admin", "emp")])
    cli(proxy, "consent", "grant", "emp", "--hours", "24", check=True)
    cli(proxy, "tokens", "create", "emp", check=True)
    response, body = Admin(proxy, "admin").start("emp")
    assert response.status == 201, body
    trick = "Eve \u202eevil\u2028\x1b[2J\x9b1m\u2066x\x7f"
    proxy.stop()
    db = sqlite3.connect(proxy.dir / "data" / "actas.db")
    with db:
        db.execute("UPDATE users SET name = ?, email = ?, org_unit = ?, groups_json = ? WHERE username = 'emp'",
                   (trick, trick, trick, json.dumps([trick])))
        token_columns = [row[1] for row in db.execute("PRAGMA table_info(api_tokens)")]
        if "name" in token_columns:
            db.execute("UPDATE api_tokens SET name = ?", (trick,))
    db.close()
    outputs = {
        "users list": cli(proxy, "users", "list"),
        "users show": cli(proxy, "users", "show", "emp"),
        "tokens list": cli(proxy, "tokens", "list"),
        "sessions list": cli(proxy, "sessions", "list"),
        "keys list": cli(proxy, "keys", "list"),
        "users show (missing)": cli(proxy, "users", "show", "no\u202ebody\x1b[31m"),
        "sessions end (missing)": cli(proxy, "sessions", "end", "imp_\u202e\x1b]0;title\x07"),
        "consent revoke (missing)": cli(proxy, "consent", "revoke", "x\u2028y"),
        "tokens revoke (missing)": cli(proxy, "tokens", "revoke", "tok_\x1b[31m"),
        "unknown option": cli(proxy, "users", "list", "--x\u202ey\x1b[31m"),
        "bad status": cli(proxy, "users", "set", "emp", "--status", "on\u2028hold"),
    }
    for name, result in outputs.items():
        text = result.stdout + result.stderr
        assert not RAW_TRICK.search(text), f"{name}: {text!r}"
    table = outputs["users list"].stdout
    assert "\\u202e" in table and "\\u2028" in table and "\\u001b" in table, table
    # JSON output: valid, and the exact stored value comes back.
    users = json.loads(cli(proxy, "users", "list", "--json", check=True).stdout)
    emp = next(u for u in users if u["username"] == "emp")
    assert emp["name"] == trick and emp["org_unit"] == trick and emp["groups"] == [trick]
    shown = json.loads(cli(proxy, "users", "show", "emp", "--json", check=True).stdout)
    assert shown["email"] == trick

"""The tutorial's workflow with revisions the user generates: change the model, autogenerate,
upgrade, write, downgrade, upgrade. What was written comes back, and ids are never reused."""

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from tests.support.alembic import HEAD, copy_project, on_database, run_alembic, run_module

NICKNAMES = {"alice": "Ally ünï 😀", "bob": "b'o\"b"}
MODEL = Path("app") / "models.py"
ROLE_LINE = (
    "    role: Mapped[str] = mapped_column(String(ROLE_MAX), default=ROLE_USER, "
    "server_default=ROLE_USER)\n"
)


def edit_model(project: Path, old: str, new: str) -> None:
    path = project / MODEL
    source = path.read_text()
    assert old in source, f"the model no longer has {old!r}"
    path.write_text(source.replace(old, new, 1))


def generate(project: Path, url: str, message: str) -> str:
    """`alembic revision --autogenerate` in `project`; the new revision file's text."""
    versions = project / "alembic" / "versions"
    before = set(versions.glob("*.py"))
    run_alembic(url, "revision", "--autogenerate", "-m", message, cwd=project)
    (generated,) = set(versions.glob("*.py")) - before
    assert generated.name.startswith(f"{int(HEAD) + 1:04d}_")
    return generated.read_text()


def add_users(connection: Connection, names: list[str]) -> None:
    for name in names:
        connection.execute(
            text(
                "INSERT INTO user_list (username, username_key, password_hash, email) "
                "VALUES (:n, :n, 'x', :e)"
            ),
            {"n": name, "e": f"{name}@ex.io"},
        )


def rows(sql: str) -> Callable[[Connection], list[tuple[object, ...]]]:
    def read(connection: Connection) -> list[tuple[object, ...]]:
        return [tuple(r) for r in connection.execute(text(sql)).all()]

    return read


def assert_checks_pass(project: Path, url: str) -> None:
    """`alembic check` (drift, AUTOINCREMENT and collation included) and the linter."""
    run_alembic(url, "check", cwd=project)
    linted = run_module(url, "app.migrate", "lint", cwd=project)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def assert_ids_not_reused(url: str) -> None:
    """Delete the newest user, register another: it gets a new id, not the deleted one."""
    (top,) = on_database(url, rows("SELECT MAX(id) FROM user_list"))[0]

    def replace_newest(connection: Connection) -> None:
        connection.execute(text("DELETE FROM user_list WHERE id = :id"), {"id": top})
        add_users(connection, ["carol"])

    on_database(url, replace_newest)
    (carol,) = on_database(url, rows("SELECT id FROM user_list WHERE username = 'carol'"))[0]
    assert isinstance(top, int) and isinstance(carol, int) and carol > top


def test_generated_added_column_comes_back_after_downgrade(
    empty_database_url: str, tmp_path: Path
) -> None:
    url, project = empty_database_url, copy_project(tmp_path)
    run_alembic(url, "upgrade", "head", cwd=project)
    edit_model(project, ROLE_LINE, ROLE_LINE + "    nickname: Mapped[str | None] = "
               "mapped_column(String(20))\n")  # fmt: skip
    revision = generate(project, url, "add nickname")
    assert "lossless.add_column(revision, 'user_list'" in revision
    assert "lossless.drop_column(revision, 'user_list', 'nickname')" in revision
    assert "# lossless: archives" in revision, "the file says what it does"

    run_alembic(url, "upgrade", "head", cwd=project)

    def write(connection: Connection) -> None:
        add_users(connection, list(NICKNAMES))
        for name, nickname in NICKNAMES.items():
            connection.execute(
                text("UPDATE user_list SET nickname = :k WHERE username = :n"),
                {"k": nickname, "n": name},
            )

    on_database(url, write)
    before = on_database(url, rows("SELECT id, username, nickname FROM user_list ORDER BY id"))
    run_alembic(url, "downgrade", "-1", cwd=project)
    run_alembic(url, "upgrade", "head", cwd=project)

    assert on_database(url, rows("SELECT id, username, nickname FROM user_list ORDER BY id")) == (
        before
    )
    assert_checks_pass(project, url)
    assert_ids_not_reused(url)


def test_generated_added_table_comes_back_after_downgrade(
    empty_database_url: str, tmp_path: Path
) -> None:
    url, project = empty_database_url, copy_project(tmp_path)
    run_alembic(url, "upgrade", "head", cwd=project)
    (project / MODEL).write_text(
        (project / MODEL).read_text() + "\n\nclass Note(Base):\n"
        '    __tablename__ = "user_note"\n'
        '    __table_args__ = ({"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", '
        '"sqlite_autoincrement": True},)\n'
        "    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)\n"
        "    body: Mapped[str] = mapped_column(String(100))\n"
    )
    revision = generate(project, url, "add user_note")
    assert "lossless.create_table(revision, 'user_note'" in revision
    assert "lossless.drop_table(revision, 'user_note')" in revision
    run_alembic(url, "upgrade", "head", cwd=project)

    def write(connection: Connection) -> None:
        for body in ("first", "zweite ß", "third 😀"):
            connection.execute(text("INSERT INTO user_note (body) VALUES (:b)"), {"b": body})

    on_database(url, write)
    before = on_database(url, rows("SELECT id, body FROM user_note ORDER BY id"))
    run_alembic(url, "downgrade", "-1", cwd=project)
    run_alembic(url, "upgrade", "head", cwd=project)

    assert on_database(url, rows("SELECT id, body FROM user_note ORDER BY id")) == before
    on_database(url, lambda c: c.execute(text("INSERT INTO user_note (body) VALUES ('new')")))
    (new_id,) = on_database(url, rows("SELECT id FROM user_note WHERE body = 'new'"))[0]
    assert isinstance(new_id, int) and new_id > max(int(str(i)) for i, _ in before)
    assert_checks_pass(project, url)


def test_generated_dropped_column_is_archived_and_comes_back(
    empty_database_url: str, tmp_path: Path
) -> None:
    url, project = empty_database_url, copy_project(tmp_path)
    run_alembic(url, "upgrade", "head", cwd=project)
    on_database(url, lambda c: add_users(c, ["dora", "emil"]))
    before = on_database(url, rows("SELECT id, email FROM user_list ORDER BY id"))
    edit_model(project, "    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))\n", "")
    revision = generate(project, url, "drop email")
    assert "lossless.drop_column(revision, 'user_list', 'email')" in revision

    run_alembic(url, "upgrade", "head", cwd=project)
    assert_checks_pass(project, url)
    run_alembic(url, "downgrade", "-1", cwd=project)

    assert on_database(url, rows("SELECT id, email FROM user_list ORDER BY id")) == before
    assert_ids_not_reused(url)


def test_check_fails_when_sqlite_lost_autoincrement(
    empty_database_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("AUTOINCREMENT is SQLite's")
    url = empty_database_url
    run_alembic(url, "upgrade", "head")

    def rebuild_without_autoincrement(connection: Connection) -> None:
        (made_with,) = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'user_list'")
        ).one()
        connection.exec_driver_sql(
            made_with.replace("user_list", "user_list_copy", 1).replace(" AUTOINCREMENT", "")
        )
        connection.exec_driver_sql("INSERT INTO user_list_copy SELECT * FROM user_list")
        connection.exec_driver_sql("DROP TABLE user_list")
        connection.exec_driver_sql("ALTER TABLE user_list_copy RENAME TO user_list")
        connection.exec_driver_sql(
            "CREATE UNIQUE INDEX ix_user_list_username_key ON user_list (username_key)"
        )

    on_database(url, rebuild_without_autoincrement)
    drifted = run_alembic(url, "check", check=False)
    assert drifted.returncode != 0
    assert "user_list lost AUTOINCREMENT" in drifted.stderr


def test_check_fails_when_mariadb_lost_the_binary_collation(
    empty_database_url: str, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("collations by name are MySQL/MariaDB's")
    url = empty_database_url
    run_alembic(url, "upgrade", "head")
    on_database(
        url,
        lambda c: c.exec_driver_sql(
            "ALTER TABLE user_list MODIFY email VARCHAR(12) COLLATE utf8mb4_general_ci NULL"
        ),
    )
    drifted = run_alembic(url, "check", check=False)
    assert drifted.returncode != 0
    assert "user_list has collation utf8mb4_general_ci, the model utf8mb4_bin" in drifted.stderr


def test_generated_type_change_keeps_autoincrement_on_sqlite(
    empty_database_url: str, backend: str, tmp_path: Path
) -> None:
    """A change SQLite can only make by copying the table (here a wider VARCHAR) is written as a
    batch that keeps AUTOINCREMENT, both ways; the linter still names the copy."""
    if backend != "sqlite":
        pytest.skip("batch copies are SQLite's")
    url, project = empty_database_url, copy_project(tmp_path)
    run_alembic(url, "upgrade", "head", cwd=project)
    edit_model(project, ROLE_LINE, ROLE_LINE.replace("String(ROLE_MAX)", "String(32)"))
    revision = generate(project, url, "widen role")
    assert "with lossless.batch_alter_table('user_list'" in revision
    on_database(url, lambda c: add_users(c, ["fay", "gus"]))

    made_with = rows("SELECT sql FROM sqlite_master WHERE name = 'user_list'")
    run_alembic(url, "upgrade", "head", cwd=project)
    assert "AUTOINCREMENT" in str(on_database(url, made_with))
    run_alembic(url, "check", cwd=project)
    run_alembic(url, "downgrade", "-1", cwd=project)
    assert "AUTOINCREMENT" in str(on_database(url, made_with))
    assert_ids_not_reused(url)
    linted = run_module(url, "app.migrate", "lint", cwd=project)
    assert "table-copy [sqlite]" in linted.stdout

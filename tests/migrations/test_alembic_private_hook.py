"""The journal times each migration step through a private part of Alembic: it replaces
`MigrationContext._migrations_fn` (what `run_migrations` walks) and reads the steps it yields.
The lockfile pins Alembic; these tests fail on the upgrade that changes any of it, before a
journal silently stops timing steps."""

from collections.abc import Iterator
from typing import Any

from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import Script
from sqlalchemy import create_engine

from app.migrate.config import script_directory
from app.migrate.journal import Journal, read_journal


def test_the_step_function_is_kept_where_the_journal_replaces_it() -> None:
    def no_steps(_heads: Any, _context: MigrationContext) -> Iterator[Any]:
        return iter(())

    with create_engine("sqlite://").connect() as connection:
        context = MigrationContext.configure(connection, opts={"fn": no_steps})
        assert context._migrations_fn is no_steps


def test_run_migrations_walks_the_replaced_function_with_heads_and_context() -> None:
    script = script_directory()
    head = script.get_current_head()
    with create_engine("sqlite://").connect() as connection:
        journal = Journal(connection, owns_transaction=False)

        def stamp_to_head(heads: Any, _context: MigrationContext) -> Any:
            return script._stamp_revs("head", heads)

        # As EnvironmentContext.configure passes them: the callbacks as a list.
        callbacks = [journal.options()["on_version_apply"]]
        context = MigrationContext.configure(
            connection, opts={"fn": stamp_to_head, "on_version_apply": callbacks}
        )
        journal.follow(context)
        assert context._migrations_fn is not stamp_to_head, "the journal did not wrap it"
        wrapped = context._migrations_fn
        calls: list[tuple[Any, MigrationContext]] = []

        def spy(heads: Any, ctx: MigrationContext) -> Iterator[Any]:
            calls.append((heads, ctx))
            assert wrapped is not None
            yield from wrapped(heads, ctx)

        context._migrations_fn = spy
        with context.begin_transaction():
            context.run_migrations()
        rows = read_journal(connection)

    assert len(calls) == 1 and calls[0][1] is context
    assert [(r["revision"], r["direction"], r["success"]) for r in rows] == [(head, "stamp", True)]


def test_the_steps_carry_what_the_journal_reads() -> None:
    script = script_directory()
    (first, *_rest) = list(script._upgrade_revs("head", "base"))
    assert isinstance(first, RevisionStep)
    assert first.is_upgrade is True
    assert isinstance(first.revision, Script)
    assert first.revision.path.endswith(".py")
    (stamp,) = list(script._stamp_revs("head", ()))
    assert type(stamp).__name__ == "StampStep"  # the journal names a stamp by its class

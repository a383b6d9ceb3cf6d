"""The migration machinery: lock, DDL guard, journal, archives, the guarded run, the start-up gate.

`alembic/env.py` calls into it; the service uses only `gate`. Its CLI is `python -m app.migrate`.
"""

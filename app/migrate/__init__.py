"""The migration machinery: lock, DDL guard, fences, journal, archives, the guarded run, the gate.

`alembic/env.py` calls into it; the service uses `gate` (start-up schema check) and `retention`
(deleting a user's archived rows). Its CLI is `python -m app.migrate`.
"""

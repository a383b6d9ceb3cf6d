"""Async user service: the Flask-Migrate tutorial rebuilt on FastAPI, SQLAlchemy and Alembic."""

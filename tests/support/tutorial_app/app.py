"""The tutorial's Flask + Flask-SQLAlchemy app and its model, with Flask-Migrate.

As the tutorial wrote it: `user_list` with a plaintext varchar(10) password and no unique
username. `TUTORIAL_EMAIL=1` is the model after the tutorial's edit that adds `email`.
"""

import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["TUTORIAL_DATABASE_URL"]
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user_list"
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(10))
    password = db.Column(db.String(10))
    if os.environ.get("TUTORIAL_EMAIL") == "1":
        email = db.Column(db.String(12), nullable=True)

"""The tutorial's Flask + Flask-SQLAlchemy app, as the benchmark's baseline (run under gunicorn).

Kept as the tutorial wrote it: one module, a Flask-SQLAlchemy model of `user_list` with a
plaintext varchar(10) password, `/user/add` and `/show/<id>`. Two changes make it benchmarkable:
`/user/add` takes the user from a JSON body (the tutorial inserted a fixed user on GET, which
cannot make unique rows), and both routes answer JSON of the same shape as the async service.
"""

import os

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
    "BASELINE_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/bench_baseline"
)
db = SQLAlchemy(app)


class User(db.Model):
    __tablename__ = "user_list"
    id = db.Column(db.Integer, primary_key=True, autoincrement=True)
    username = db.Column(db.String(10))
    password = db.Column(db.String(10))
    email = db.Column(db.String(12), nullable=True)


@app.route("/user/add", methods=["GET", "POST"])
def user_add():
    body = request.get_json(silent=True) or {"username": "法外狂徒张小三", "password": "123456"}
    user = User(username=body["username"], password=body["password"], email=body.get("email"))
    db.session.add(user)
    db.session.commit()
    return jsonify(id=user.id, username=user.username, email=user.email), 201


@app.route("/show/<id>")
def show(id):
    user = db.session.get(User, int(id))
    if user is None:
        return jsonify(detail=f"user {id} not found"), 404
    return jsonify(id=user.id, username=user.username, email=user.email)


if __name__ == "__main__":
    with app.app_context():
        db.create_all()

"""`python -m app.migrate adopt`: take over a database made by the tutorial's Flask app."""

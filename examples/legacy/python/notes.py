"""A small Flask app (Debian's python3-flask): a route with a parameter and a form.

The notes live in SQLite, not in a Python list: the app runs in several
preforked worker processes, each with memory of its own, so a list kept by
one worker would not be seen by the others (as under gunicorn).
"""
import os
import sqlite3
import tempfile

from flask import Flask, jsonify, request

# NOTES_DB from the server (examples/legacy/server.mjs), else one database
# per server: the workers' parent is the Node process.
DATABASE = os.environ.get('NOTES_DB') or os.path.join(tempfile.gettempdir(), f'jsonstore-legacy-notes-{os.getppid()}.sqlite3')

app = Flask(__name__)


def connect():
    connection = sqlite3.connect(DATABASE, timeout=10)
    connection.execute('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)')
    return connection


@app.get('/')
def index():
    with connect() as db:
        return jsonify(notes=[text for (text,) in db.execute('SELECT text FROM notes ORDER BY id')])


@app.post('/')
def add():
    with connect() as db:
        cursor = db.execute('INSERT INTO notes (text) VALUES (?)', (request.form.get('text', ''),))
        return jsonify(added=cursor.lastrowid - 1), 201


@app.get('/<int:index>')
def one(index):
    with connect() as db:
        row = db.execute('SELECT text FROM notes WHERE id = ?', (index + 1,)).fetchone()
    if row is None:
        return jsonify(error='no such note'), 404
    return jsonify(text=row[0])

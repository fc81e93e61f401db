"""A small Flask app (Debian's python3-flask): a route with a parameter and a form."""
from flask import Flask, jsonify, request

app = Flask(__name__)
notes = []


@app.get('/')
def index():
    return jsonify(notes=notes)


@app.post('/')
def add():
    notes.append(request.form.get('text', ''))
    return jsonify(added=len(notes) - 1), 201


@app.get('/<int:index>')
def one(index):
    if index >= len(notes):
        return jsonify(error='no such note'), 404
    return jsonify(text=notes[index])

"""The talk's hello_world, in Python: the smallest WSGI application."""


def hello_world(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'Hello world!\n']

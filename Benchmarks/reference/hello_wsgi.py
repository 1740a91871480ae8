# The uWSGI reference: a WSGI hello writing the same 14-byte body as Postern's `hello`.
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Hello, World!\n"]

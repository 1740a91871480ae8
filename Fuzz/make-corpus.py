#!/usr/bin/env python3
# Writes the seed corpus (Fuzz/corpus/<target>/) from the spec fixtures; rerun after editing.
# Each seed starts with the feeding-pattern byte (FuzzInput): 0x00 = all at once, 0x01 = byte by
# byte, 0x07 = 7-byte chunks; its top bit picks a target's variant (the CGI head parser's
# HTTP-status-line mode).
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def fcgi_record(rtype, rid, content=b"", padding=None):
    if padding is None:
        padding = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, rid, len(content), padding, 0) + content + b"\0" * padding


def fcgi_pair(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def fcgi_begin(rid, role=1, keep=0):
    return fcgi_record(1, rid, struct.pack(">HB5x", role, keep))


def netstring_scgi(headers, body=b""):
    content = b"".join(n + b"\0" + v + b"\0" for n, v in headers)
    return str(len(content)).encode() + b":" + content + b"," + body


def uwsgi(pairs, body=b""):
    block = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", 0, len(block), 0) + block + body


def write(target, name, data, patterns=(0x00, 0x01, 0x07)):
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    for pattern in patterns:
        with open(os.path.join(directory, "%s-%02x" % (name, pattern)), "wb") as f:
            f.write(bytes([pattern]) + data)


params = fcgi_pair(b"SERVER_PORT", b"80")
# FastCGI 1.0 Appendix B: a RESPONDER request, then multiplexed, KEEP_CONN, management,
# an AUTHORIZER, a FILTER, an ABORT and a long (4-byte length) pair straddling two records.
write("fastcgi", "appendix-b", fcgi_begin(1) + fcgi_record(4, 1, params) + fcgi_record(4, 1) + fcgi_record(5, 1))
big = fcgi_pair(b"HTTP_X_LONG", b"v" * 200)
write("fastcgi", "straddle", fcgi_begin(1, keep=1) + fcgi_record(4, 1, big[:100]) + fcgi_record(4, 1, big[100:])
      + fcgi_record(4, 1) + fcgi_record(5, 1, b"body") + fcgi_record(5, 1))
write("fastcgi", "multiplexed", fcgi_begin(1, keep=1) + fcgi_begin(2, keep=1) + fcgi_record(4, 2, params)
      + fcgi_record(4, 1, params) + fcgi_record(4, 2) + fcgi_record(4, 1) + fcgi_record(2, 2)
      + fcgi_record(5, 1, b"x") + fcgi_record(5, 1))
write("fastcgi", "get-values", fcgi_record(9, 0, fcgi_pair(b"FCGI_MAX_CONNS", b"") + fcgi_pair(b"FCGI_MPXS_CONNS", b""))
      + fcgi_record(42, 0, b"????"))
write("fastcgi", "authorizer", fcgi_begin(1, role=2) + fcgi_record(4, 1, fcgi_pair(b"FCGI_APACHE_ROLE", b"AUTHORIZER"))
      + fcgi_record(4, 1))
write("fastcgi", "filter", fcgi_begin(1, role=3) + fcgi_record(4, 1, fcgi_pair(b"FCGI_DATA_LENGTH", b"3"))
      + fcgi_record(4, 1) + fcgi_record(5, 1) + fcgi_record(8, 1, b"abc") + fcgi_record(8, 1))
write("fastcgi", "abort-in-params", fcgi_begin(1) + fcgi_record(4, 1, params) + fcgi_record(2, 1), patterns=(0x00,))
write("fastcgi", "odd-padding", fcgi_begin(1) + fcgi_record(4, 1, params, padding=255) + fcgi_record(4, 1), patterns=(0x00,))

# SCGI: the spec's example, a GET, and a body that arrives in pieces.
write("scgi", "spec", b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,"
      b"What is the answer to life?")
write("scgi", "get", netstring_scgi([(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"REQUEST_METHOD", b"GET"),
                                     (b"HTTP_HOST", b"example.com"), (b"QUERY_STRING", b"a=1&b=%20")]))
write("scgi", "body", netstring_scgi([(b"CONTENT_LENGTH", b"11"), (b"SCGI", b"1"), (b"HTTP_PROXY", b"x")], b"hello world"))

# uwsgi: a modifier1 0 request with and without a body.
write("uwsgi", "get", uwsgi([(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/x"), (b"QUERY_STRING", b"y=1"),
                             (b"CONTENT_LENGTH", b"")]))
write("uwsgi", "post", uwsgi([(b"CONTENT_LENGTH", b"5"), (b"REQUEST_METHOD", b"POST"), (b"HTTP_X_A", b"1")], b"hello"))

# HTTP/1.1: keep-alive GET, chunked POST, absolute-form, asterisk-form, a pipelined pair.
write("http", "get", b"GET /a%20b/c?x=1&y=%zz HTTP/1.1\r\nHost: example.com:8080\r\nProxy: evil\r\nX_Under: 1\r\n\r\n")
write("http", "chunked", b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
write("http", "absolute", b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n")
write("http", "options", b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.0\r\n\r\n")

# CGI script output (RFC 3875 §6): document, local redirect, client redirect, LF-only, and the
# HTTP status line variant (top bit of the first byte).
write("cgi-head", "document", b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\nbody")
write("cgi-head", "redirect", b"Location: http://example.com/\r\n\r\n")
write("cgi-head", "lf-only", b"Content-Type: text/html\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n<p>")
write("cgi-head", "status-line", b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\n\r\n", patterns=(0x80, 0x81))

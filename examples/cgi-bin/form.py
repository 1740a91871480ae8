#!/usr/bin/env python3
# A form handler: decodes a GET query or a urlencoded POST body and echoes the fields.
import os, sys, urllib.parse, html
method = os.environ.get("REQUEST_METHOD", "GET")
if method == "POST":
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    data = sys.stdin.buffer.read(length).decode("utf-8", "replace")
else:
    data = os.environ.get("QUERY_STRING", "")
fields = urllib.parse.parse_qs(data, keep_blank_values=True)
sys.stdout.write("Content-Type: text/plain; charset=utf-8\r\n\r\n")
for name in sorted(fields):
    for value in fields[name]:
        sys.stdout.write("%s=%s\n" % (name, value))

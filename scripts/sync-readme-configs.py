#!/usr/bin/env python3
"""Copies every shipped front-end configuration into README.md between its markers:

    <!-- config: apache/postern-proxy-fcgi.conf -->
    ...the file, in a code block...
    <!-- /config -->

Run it after editing a file in apache/, lighttpd/ or examples/nginx/. The test
FrontEndTests/ReadmeGuideTests fails when the README and a file differ.
"""
import pathlib, re

root = pathlib.Path(__file__).resolve().parent.parent
readme = root / "README.md"
text = readme.read_text()

def block(match):
    path = match.group(1)
    language = "nginx" if path.startswith("examples/nginx") else ("apache" if path.startswith("apache") else "lighttpd")
    body = (root / path).read_text()
    return f"<!-- config: {path} -->\n```{language}\n{body}```\n<!-- /config -->"

new = re.sub(r"<!-- config: (\S+) -->\n.*?<!-- /config -->", block, text, flags=re.S)
readme.write_text(new)
print("README.md synced" if new != text else "README.md already in sync")

#!/usr/bin/env python3
"""Copies every shipped front-end configuration into docs/deploying.md between its markers:

    <!-- config: apache/postern-proxy-fcgi.conf -->
    ...the file, in a code block...
    <!-- /config -->

Run it after editing a file in apache/, lighttpd/, examples/nginx/ or examples/haproxy/. The test
FrontEndTests/ReadmeGuideTests fails when docs/deploying.md and a file differ.
"""
import pathlib, re

root = pathlib.Path(__file__).resolve().parent.parent
guide = root / "docs" / "deploying.md"
text = guide.read_text()

def block(match):
    path = match.group(1)
    language = {"examples/nginx": "nginx", "examples/haproxy": "haproxy", "apache/": "apache"}.get(
        next((prefix for prefix in ("examples/nginx", "examples/haproxy", "apache/") if path.startswith(prefix)), ""), "lighttpd")
    body = (root / path).read_text()
    return f"<!-- config: {path} -->\n```{language}\n{body}```\n<!-- /config -->"

new = re.sub(r"<!-- config: (\S+) -->\n.*?<!-- /config -->", block, text, flags=re.S)
guide.write_text(new)
print("docs/deploying.md synced" if new != text else "docs/deploying.md already in sync")

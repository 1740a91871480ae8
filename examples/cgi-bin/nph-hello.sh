#!/bin/sh
# A non-parsed-header script (RFC 3875 §5): its output is a complete HTTP response.
printf 'HTTP/1.1 299 Custom Reason\r\nContent-Type: text/plain\r\nX-NPH: yes\r\n\r\nnph body\n'

#!/bin/sh
# Location without Status: a local path is an internal redirect (RFC 3875 §6.2.2); a URL is a 302.
case "$QUERY_STRING" in
    external) printf 'Location: http://example.com/elsewhere\r\n\r\n' ;;
    *) printf 'Location: /env.sh/redirected?via=redirect\r\n\r\n' ;;
esac

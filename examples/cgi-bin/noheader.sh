#!/bin/sh
# Prints no header block at all: the gateway answers 502.
echo "this is not a header"

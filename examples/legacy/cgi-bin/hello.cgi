#!/bin/sh
# The smallest CGI program: a header, a blank line, a body.
printf 'Content-Type: text/plain\n\nHello world!\n'

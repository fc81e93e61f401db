#!/bin/sh
# A CGI script in the style of the early web's test scripts: the server runs
# it once per request, hands it the request as environment variables, and
# sends back whatever it prints: header lines, a blank line, then the body.
echo "Content-Type: text/plain"
echo ""
echo "CGI/1.1 script report"
echo "====================="
echo ""
echo "Run by:            $SERVER_SOFTWARE ($GATEWAY_INTERFACE)"
echo "Server:            $SERVER_NAME port $SERVER_PORT, $SERVER_PROTOCOL"
echo "Request:           $REQUEST_METHOD"
echo "Script name:       $SCRIPT_NAME"
echo "Path info:         $PATH_INFO"
echo "Query string:      $QUERY_STRING"
echo "Remote address:    $REMOTE_ADDR"
echo "Content type:      $CONTENT_TYPE"
echo "Content length:    $CONTENT_LENGTH"
echo "User agent:        $HTTP_USER_AGENT"
echo "Accept:            $HTTP_ACCEPT"
echo "Working directory: $(pwd)"
echo "Process id:        $$"
echo ""
if [ -n "$CONTENT_LENGTH" ]; then
  # A CGI script reads exactly CONTENT_LENGTH bytes of body from stdin.
  echo "Request body:"
  head -c "$CONTENT_LENGTH"
  echo ""
  echo ""
fi
echo "The whole environment, as this process sees it:"
env | sort

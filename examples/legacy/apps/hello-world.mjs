// The talk's WSGI hello_world, translated line for line: the server calls
// the app with the request's environ and a start_response callback; the app
// starts the response and returns the body as a list of chunks.
export function helloWorld(environ, startResponse) {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['Hello world!\n'];
}

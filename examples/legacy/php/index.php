<?php
// A PHP front controller: every path under its mount reaches this file, and
// it routes on REQUEST_URI as PHP frameworks do. Served by php-cgi through
// cgi() at /php, and by php-fpm through fastcgi() at /fpm when FPM_SOCKET is set.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$route = substr($path, strlen($_SERVER['SCRIPT_NAME'])) ?: '/';

if ($route === '/') {
    header('Content-Type: text/html; charset=utf-8');
    $name = htmlspecialchars($_POST['name'] ?? 'world');
    echo "<!doctype html><title>PHP beside jsonStore()</title>\n";
    echo "<h1>Hello, $name!</h1>\n";
    echo "<p>PHP " . PHP_VERSION . " (" . PHP_SAPI . "), mounted at " . htmlspecialchars($_SERVER['SCRIPT_NAME']) . "</p>\n";
    echo "<form method=post><input name=name placeholder='your name'> <button>Greet</button></form>\n";
} elseif ($route === '/server.json') {
    header('Content-Type: application/json');
    $keys = ['REQUEST_URI', 'SCRIPT_NAME', 'PATH_INFO', 'SCRIPT_FILENAME', 'REDIRECT_STATUS', 'GATEWAY_INTERFACE', 'SERVER_SOFTWARE'];
    echo json_encode(array_intersect_key($_SERVER, array_flip($keys)), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
} else {
    http_response_code(404);
    header('Content-Type: text/plain');
    echo "No page at $route\n";
}

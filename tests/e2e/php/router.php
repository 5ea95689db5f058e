<?php
/**
 * Router for PHP's built-in server, doing what WordPress's .htaccess does on Apache.
 *
 * Existing files and folders are served as they are, and every other path goes
 * to index.php, so that pretty permalinks such as /account/ work.
 *
 * @package Coachbridge
 */

$cbe2e_path = rawurldecode( (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ) );
$cbe2e_file = $_SERVER['DOCUMENT_ROOT'] . $cbe2e_path;

if ( '/' !== $cbe2e_path && file_exists( $cbe2e_file ) ) {
	// The built-in server serves the file, or the folder's index.php.
	return false;
}

$_SERVER['SCRIPT_NAME']     = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'] . '/index.php';
$_SERVER['PHP_SELF']        = '/index.php';
require $_SERVER['DOCUMENT_ROOT'] . '/index.php';

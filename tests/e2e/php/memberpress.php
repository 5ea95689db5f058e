<?php
/**
 * Runs the MemberPress stand-in's purchase and refund from the command line, webhook included.
 *
 * Usage: php memberpress.php DOCROOT buy USER_LOGIN MEMBERSHIP_ID   (prints the transaction id)
 *        php memberpress.php DOCROOT refund TRANSACTION_ID
 *
 * @package Coachbridge
 */

if ( 'cli' !== PHP_SAPI || $argc < 4 ) {
	fwrite( STDERR, "usage: php memberpress.php DOCROOT buy USER_LOGIN MEMBERSHIP_ID | refund TRANSACTION_ID\n" );
	exit( 2 );
}

$cbe2e_config = (string) file_get_contents( rtrim( $argv[1], '/' ) . '/wp-config.php' );
if ( ! preg_match( "#define\\( 'WP_HOME', 'http://([^']+)' \\)#", $cbe2e_config, $cbe2e_match ) ) {
	fwrite( STDERR, "WP_HOME is not defined in {$argv[1]}/wp-config.php\n" );
	exit( 1 );
}
// WordPress reads these while it loads, and a CLI request has none of them.
$_SERVER['HTTP_HOST']   = $cbe2e_match[1];
$_SERVER['REQUEST_URI'] = '/';
require rtrim( $argv[1], '/' ) . '/wp-load.php';

if ( 'buy' === $argv[2] && 5 === $argc ) {
	$cbe2e_user = get_user_by( 'login', $argv[3] );
	if ( ! $cbe2e_user ) {
		fwrite( STDERR, "no user with login {$argv[3]}\n" );
		exit( 1 );
	}
	echo Cbe2e_Memberpress::buy( $cbe2e_user->ID, (int) $argv[4] ) . "\n";
} elseif ( 'refund' === $argv[2] && 4 === $argc ) {
	Cbe2e_Memberpress::refund( (int) $argv[3] );
} else {
	fwrite( STDERR, "unknown command: use buy USER_LOGIN MEMBERSHIP_ID or refund TRANSACTION_ID\n" );
	exit( 2 );
}

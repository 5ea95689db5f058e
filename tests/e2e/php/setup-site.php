<?php
/**
 * Installs and configures the test site from the command line, through WordPress's own functions.
 *
 * Usage: php setup-site.php DOCROOT install
 *        php setup-site.php DOCROOT configure   (prints the site's facts as JSON)
 *
 * configure reads CBE2E_BRIDGE_URL, CBE2E_SHARED_SECRET and CBE2E_WEBHOOK_KEY
 * from the environment.
 *
 * @package Coachbridge
 */

if ( 'cli' !== PHP_SAPI || $argc !== 3 ) {
	fwrite( STDERR, "usage: php setup-site.php DOCROOT install|configure\n" );
	exit( 2 );
}

const CBE2E_PASSWORD = 'e2e-password-only-on-loopback';

$cbe2e_docroot = rtrim( $argv[1], '/' );
$cbe2e_command = $argv[2];

// WordPress reads these while it loads, and a CLI request has none of them.
$_SERVER['HTTP_HOST']   = (string) preg_replace( '#^https?://#', '', cbe2e_site_url( $cbe2e_docroot ) );
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = '127.0.0.1';

if ( 'install' === $cbe2e_command ) {
	define( 'WP_INSTALLING', true );
}

/**
 * Replaces WordPress's pluggable wp_mail(): the machine has no mail server, and
 * the installer mails the administrator.
 *
 * @return bool
 */
function wp_mail() {
	return true;
}

require $cbe2e_docroot . '/wp-load.php';

if ( 'install' === $cbe2e_command ) {
	cbe2e_install();
} elseif ( 'configure' === $cbe2e_command ) {
	echo wp_json_encode( cbe2e_configure(), JSON_PRETTY_PRINT ) . "\n";
} else {
	fwrite( STDERR, "unknown command $cbe2e_command: use install or configure\n" );
	exit( 2 );
}

/**
 * Returns WP_HOME from the site's wp-config.php without loading WordPress.
 *
 * @param string $docroot WordPress folder.
 * @return string
 */
function cbe2e_site_url( $docroot ) {
	$config = (string) file_get_contents( $docroot . '/wp-config.php' );
	if ( ! preg_match( "/define\\( 'WP_HOME', '([^']+)' \\)/", $config, $match ) ) {
		fwrite( STDERR, "WP_HOME is not defined in $docroot/wp-config.php\n" );
		exit( 1 );
	}
	return $match[1];
}

/**
 * Runs WordPress's installer: tables, options and the administrator.
 */
function cbe2e_install() {
	require_once ABSPATH . 'wp-admin/includes/upgrade.php';
	if ( is_blog_installed() ) {
		fwrite( STDERR, "WordPress is already installed in this database\n" );
		exit( 1 );
	}
	wp_install( 'Coachbridge test site', 'admin', 'admin@example.org', false, '', CBE2E_PASSWORD );
}

/**
 * Creates users, activates the plugins, stores their settings and creates the pages.
 *
 * @return array The site's facts for the tests.
 */
function cbe2e_configure() {
	require_once ABSPATH . 'wp-admin/includes/plugin.php';

	global $wp_rewrite;
	$wp_rewrite->set_permalink_structure( '/%postname%/' );
	update_option( 'timezone_string', 'UTC' );
	switch_theme( 'twentytwentyone' );

	$users = array(
		'admin' => get_user_by( 'login', 'admin' )->ID,
		'coach' => cbe2e_create_user( 'zoe', 'Zoë Martin', 'editor' ),
		'ana'   => cbe2e_create_user( 'ana', 'Ana Lima', 'subscriber' ),
		'ben'   => cbe2e_create_user( 'ben', 'Ben Okafor', 'subscriber' ),
		'cara'  => cbe2e_create_user( 'cara', 'Cara Silva', 'subscriber' ),
		'dan'   => cbe2e_create_user( 'dan', 'Dan Novak', 'subscriber' ),
		'eli'   => cbe2e_create_user( 'eli', 'Eli Haddad', 'subscriber' ),
		'fay'   => cbe2e_create_user( 'fay', 'Fay Lund', 'subscriber' ),
		'gus'   => cbe2e_create_user( 'gus', 'Gus Moreau', 'subscriber' ),
		'hal'   => cbe2e_create_user( 'hal', 'Hal Berg', 'subscriber' ),
	);

	cbe2e_activate( 'memberpress-standin/memberpress-standin.php' );
	cbe2e_activate( 'coachbridge/coachbridge.php' );

	$saved = Coachbridge_Settings::save( cbe2e_env( 'CBE2E_BRIDGE_URL' ), cbe2e_env( 'CBE2E_SHARED_SECRET' ) );
	if ( 'saved' !== $saved ) {
		fwrite( STDERR, "the Coachbridge settings were not saved: $saved\n" );
		exit( 1 );
	}
	update_option( Cbe2e_Memberpress::OPTION_WEBHOOK_URL, cbe2e_env( 'CBE2E_BRIDGE_URL' ) . '/webhooks/memberpress' );
	update_option( Cbe2e_Memberpress::OPTION_WEBHOOK_KEY, cbe2e_env( 'CBE2E_WEBHOOK_KEY' ) );

	$account_page = Cbe2e_Memberpress::create_account_page();
	$membership   = Cbe2e_Memberpress::create_membership( 'Strength coaching', '49.00' );
	// Sold by no program until a test creates one in the Coaching admin.
	$unassigned = Cbe2e_Memberpress::create_membership( 'Nutrition coaching', '29.00' );
	flush_rewrite_rules();

	return array(
		'url'           => home_url(),
		'password'      => CBE2E_PASSWORD,
		'users'         => $users,
		'account_url'   => get_permalink( $account_page ),
		'membership'    => array(
			'id'  => $membership,
			'url' => get_permalink( $membership ),
		),
		'unassigned_membership' => array(
			'id'    => $unassigned,
			'title' => get_the_title( $unassigned ),
		),
	);
}

/**
 * Creates a user with the shared test password and returns the user id.
 *
 * @param string $login        User name.
 * @param string $display_name Display name.
 * @param string $role         Role.
 * @return int
 */
function cbe2e_create_user( $login, $display_name, $role ) {
	$names   = explode( ' ', $display_name, 2 );
	$user_id = wp_insert_user(
		array(
			'user_login'   => $login,
			'user_pass'    => CBE2E_PASSWORD,
			'user_email'   => $login . '@example.org',
			'display_name' => $display_name,
			'first_name'   => $names[0],
			'last_name'    => isset( $names[1] ) ? $names[1] : '',
			'role'         => $role,
		)
	);
	if ( is_wp_error( $user_id ) ) {
		fwrite( STDERR, "could not create user $login: " . $user_id->get_error_message() . "\n" );
		exit( 1 );
	}
	return $user_id;
}

/**
 * Activates a plugin with WordPress's activate_plugin(), which runs its activation hook.
 *
 * @param string $plugin Plugin file relative to the plugins folder.
 */
function cbe2e_activate( $plugin ) {
	$result = activate_plugin( $plugin, '', false, false );
	if ( is_wp_error( $result ) ) {
		fwrite( STDERR, "could not activate $plugin: " . $result->get_error_message() . "\n" );
		exit( 1 );
	}
	// activate_plugin() includes the plugin's main file, which loads the
	// classes that configure() calls next.
	if ( 'coachbridge/coachbridge.php' === $plugin && ! class_exists( 'Coachbridge_Settings' ) ) {
		fwrite( STDERR, "the Coachbridge plugin loaded without Coachbridge_Settings\n" );
		exit( 1 );
	}
}

/**
 * Returns a required environment variable or exits with a message naming it.
 *
 * @param string $name Variable name.
 * @return string
 */
function cbe2e_env( $name ) {
	$value = getenv( $name );
	if ( false === $value || '' === $value ) {
		fwrite( STDERR, "$name is not set\n" );
		exit( 1 );
	}
	return $value;
}

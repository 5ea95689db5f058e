<?php
/**
 * Unit tests of the WordPress plugin, run without WordPress: php tests/php/run.php
 *
 * wordpress-stubs.php replaces WordPress. The signing tests compare the PHP
 * signer with vectors.json, which tests/test_plugin.py generates with
 * bridge/signing.py and checks against Python on every run. The script prints
 * one line per failure and a closing "N passed, N failed" line, and exits with
 * status 1 when a test failed.
 *
 * @package Coachbridge
 */

define( 'ABSPATH', __DIR__ . '/' );

require __DIR__ . '/wordpress-stubs.php';

$coachbridge_plugin_dir = dirname( __DIR__, 2 ) . '/wp_plugin_stub/';
require $coachbridge_plugin_dir . 'coachbridge.php';

$coachbridge_results = array(
	'passed' => 0,
	'failed' => 0,
);

// Log lines from the plugin go to a scratch file, so the output shows results only.
$coachbridge_log_file = tempnam( sys_get_temp_dir(), 'coachbridge-test-log' );
ini_set( 'error_log', $coachbridge_log_file );

// A PHP notice or warning in plugin code fails the test that caused it.
set_error_handler(
	function ( $severity, $message, $file, $line ) {
		throw new ErrorException( $message, 0, $severity, $file, $line );
	}
);

/**
 * Runs one test function and records the result.
 *
 * @param string   $name Test name.
 * @param callable $test Test body; it throws to fail.
 */
function coachbridge_test( $name, $test ) {
	global $coachbridge_results;
	coachbridge_test_reset();
	try {
		$test();
		++$coachbridge_results['passed'];
	} catch ( Throwable $error ) {
		++$coachbridge_results['failed'];
		echo 'FAILED ' . $name . ': ' . $error->getMessage() . ' (' . basename( $error->getFile() ) . ':' . $error->getLine() . ")\n";
	}
}

/**
 * Throws when two values differ, showing both.
 *
 * @param mixed  $expected Expected value.
 * @param mixed  $actual   Actual value.
 * @param string $what     What was compared.
 */
function coachbridge_assert_same( $expected, $actual, $what ) {
	if ( $expected !== $actual ) {
		throw new Exception( $what . ': expected ' . var_export( $expected, true ) . ', got ' . var_export( $actual, true ) );
	}
}

/**
 * Throws when a condition is false.
 *
 * @param bool   $condition Condition.
 * @param string $what      What should hold.
 */
function coachbridge_assert( $condition, $what ) {
	if ( ! $condition ) {
		throw new Exception( 'expected ' . $what );
	}
}

/**
 * Throws unless the text contains the fragment.
 *
 * @param string $fragment Expected fragment.
 * @param string $text     Text searched.
 */
function coachbridge_assert_contains( $fragment, $text ) {
	if ( false === strpos( $text, $fragment ) ) {
		throw new Exception( 'expected ' . var_export( $fragment, true ) . ' in ' . var_export( $text, true ) );
	}
}

/**
 * Throws if the text contains the fragment.
 *
 * @param string $fragment Unwanted fragment.
 * @param string $text     Text searched.
 */
function coachbridge_assert_not_contains( $fragment, $text ) {
	if ( false !== strpos( $text, $fragment ) ) {
		throw new Exception( 'did not expect ' . var_export( $fragment, true ) . ' in ' . var_export( $text, true ) );
	}
}

/**
 * Resets options, requests, the user and the superglobals between tests.
 */
function coachbridge_test_reset() {
	$GLOBALS['coachbridge_test_options']    = array(
		'coachbridge_bridge_url'    => 'http://127.0.0.1:8765',
		'coachbridge_shared_secret' => 'test-secret-0123456789',
	);
	$GLOBALS['coachbridge_test_transients'] = array();
	$GLOBALS['coachbridge_test_calls']      = array();
	$GLOBALS['coachbridge_test_user']       = array(
		'id'           => 42,
		'capabilities' => array( 'read' ),
	);
	$GLOBALS['coachbridge_test_http']       = array(
		'responses' => array(),
		'requests'  => array(),
	);
	$_GET  = array();
	$_POST = array();
}

/**
 * Queues a response for the next wp_remote_request() call.
 *
 * @param int    $status       HTTP status.
 * @param string $body         Body.
 * @param string $content_type Content-Type header.
 */
function coachbridge_queue_response( $status, $body, $content_type = 'application/json' ) {
	$GLOBALS['coachbridge_test_http']['responses'][] = array(
		'response' => array( 'code' => $status ),
		'body'     => $body,
		'headers'  => array( 'Content-Type' => $content_type ),
	);
}

/**
 * Returns what a callback prints.
 *
 * @param callable $callback Callback.
 * @return string
 */
function coachbridge_capture( $callback ) {
	ob_start();
	try {
		$callback();
	} finally {
		$output = ob_get_clean();
	}
	return $output;
}

/**
 * Returns the last request sent with wp_remote_request().
 *
 * @return array{url: string, args: array}
 */
function coachbridge_last_request() {
	$requests = $GLOBALS['coachbridge_test_http']['requests'];
	coachbridge_assert( count( $requests ) > 0, 'a request to bridge' );
	return end( $requests );
}

$coachbridge_vectors = json_decode( file_get_contents( __DIR__ . '/vectors.json' ), true );

// Signing: the PHP signer must produce what bridge/signing.py produces.

foreach ( $coachbridge_vectors['queries'] as $coachbridge_index => $coachbridge_vector ) {
	coachbridge_test(
		'canonical query of raw query ' . $coachbridge_index,
		function () use ( $coachbridge_vector ) {
			$pairs = Coachbridge_Signer::parse_query( $coachbridge_vector['raw'] );
			coachbridge_assert_same( $coachbridge_vector['canonical'], Coachbridge_Signer::canonical_query( $pairs ), 'canonical query of ' . $coachbridge_vector['raw'] );
		}
	);
}

foreach ( $coachbridge_vectors['signatures'] as $coachbridge_index => $coachbridge_vector ) {
	coachbridge_test(
		'signature vector ' . $coachbridge_index,
		function () use ( $coachbridge_vector ) {
			$canonical = Coachbridge_Signer::canonical_string(
				$coachbridge_vector['method'],
				$coachbridge_vector['path'],
				Coachbridge_Signer::canonical_query( Coachbridge_Signer::query_pairs( $coachbridge_vector['query'] ) ),
				$coachbridge_vector['timestamp'],
				$coachbridge_vector['request_id'],
				$coachbridge_vector['user_id'],
				$coachbridge_vector['body']
			);
			coachbridge_assert_same( $coachbridge_vector['canonical'], $canonical, 'canonical string' );

			$headers = Coachbridge_Signer::sign(
				$coachbridge_vector['secret'],
				$coachbridge_vector['method'],
				$coachbridge_vector['path'],
				$coachbridge_vector['query'],
				$coachbridge_vector['body'],
				$coachbridge_vector['user_id'],
				$coachbridge_vector['timestamp'],
				$coachbridge_vector['request_id']
			);
			coachbridge_assert_same( $coachbridge_vector['headers'], $headers, 'headers' );
		}
	);
}

coachbridge_test(
	'new request ids are valid and differ',
	function () {
		$first  = Coachbridge_Signer::new_request_id();
		$second = Coachbridge_Signer::new_request_id();
		coachbridge_assert( 1 === preg_match( '/^[A-Za-z0-9_-]{16,64}$/D', $first ), 'a valid request id, got ' . $first );
		coachbridge_assert( $first !== $second, 'two different ids' );
	}
);

coachbridge_test(
	'build query sends the canonical form',
	function () {
		$query = array(
			'view'    => 'week',
			'program' => '3',
			'q'       => 'a b',
		);
		coachbridge_assert_same( 'program=3&q=a%20b&view=week', Coachbridge_Signer::build_query( $query ), 'query string' );
		coachbridge_assert_same( '', Coachbridge_Signer::build_query( array() ), 'empty query' );
	}
);

// Plugin bootstrap.

coachbridge_test(
	'hooks are registered',
	function () {
		coachbridge_init();
		$hooks = $GLOBALS['coachbridge_test_hooks'];
		foreach ( array( 'mepr_account_nav', 'mepr_account_nav_content', 'template_redirect', 'rest_api_init', 'admin_menu', 'admin_enqueue_scripts', 'admin_post_coachbridge_save_settings', 'admin_post_coachbridge_client_action' ) as $hook ) {
			coachbridge_assert( isset( $hooks[ $hook ] ), 'a callback on ' . $hook );
		}
		coachbridge_assert_same( 2, $hooks['mepr_account_nav_content'][0][2], 'arguments accepted by the tab content callback' );
	}
);

// Settings.

coachbridge_test(
	'settings page escapes the stored url',
	function () {
		$GLOBALS['coachbridge_test_user']['capabilities'] = array( 'manage_options' );
		$GLOBALS['coachbridge_test_options']['coachbridge_bridge_url'] = 'http://bridge.example/"><script>alert(1)</script>';
		$html = coachbridge_capture( array( 'Coachbridge_Settings', 'render_page' ) );
		coachbridge_assert_not_contains( '<script>', $html );
		coachbridge_assert_contains( '&quot;&gt;&lt;script&gt;', $html );
	}
);

coachbridge_test(
	'settings page hides the stored secret',
	function () {
		$GLOBALS['coachbridge_test_user']['capabilities'] = array( 'manage_options' );
		$GLOBALS['coachbridge_test_options']['coachbridge_shared_secret'] = 'secret-value-0123"<b>';
		$html = coachbridge_capture( array( 'Coachbridge_Settings', 'render_page' ) );
		coachbridge_assert_not_contains( 'secret-value-0123', $html );
		coachbridge_assert_not_contains( '"<b>', $html );
		coachbridge_assert_contains( '<code>&quot;&lt;b&gt;</code>', $html );
		coachbridge_assert_contains( 'name="coachbridge_shared_secret" value=""', $html );
	}
);

coachbridge_test(
	'settings page escapes the notice code',
	function () {
		$GLOBALS['coachbridge_test_user']['capabilities'] = array( 'manage_options' );
		$_GET['coachbridge_notice'] = '<script>saved';
		$html = coachbridge_capture( array( 'Coachbridge_Settings', 'render_page' ) );
		coachbridge_assert_not_contains( '<script>', $html );
	}
);

coachbridge_test(
	'settings page needs manage_options',
	function () {
		$html = coachbridge_capture( array( 'Coachbridge_Settings', 'render_page' ) );
		coachbridge_assert_same( '', $html, 'output for a user without manage_options' );
	}
);

coachbridge_test(
	'bridge url validation',
	function () {
		$valid = array(
			'http://127.0.0.1:8765/'            => 'http://127.0.0.1:8765',
			' https://bridge.example.org/base ' => 'https://bridge.example.org/base',
		);
		foreach ( $valid as $input => $expected ) {
			coachbridge_assert_same( $expected, Coachbridge_Settings::validate_url( $input ), 'cleaned ' . $input );
		}
		foreach ( array( '', 'ftp://bridge.example', 'javascript:alert(1)', 'bridge.example', 'http://bridge.example/?a=1', 'http://bridge.example/#top', 'http://user@bridge.example' ) as $input ) {
			coachbridge_assert( is_wp_error( Coachbridge_Settings::validate_url( $input ) ), 'an error for ' . var_export( $input, true ) );
		}
	}
);

coachbridge_test(
	'settings save validates before storing',
	function () {
		coachbridge_assert_same( 'invalid_url', Coachbridge_Settings::save( 'ftp://x', 'new-secret-0123456789' ), 'notice' );
		coachbridge_assert_same( 'short_secret', Coachbridge_Settings::save( 'http://127.0.0.1:9000', 'short' ), 'notice' );
		coachbridge_assert_same( 'invalid_secret', Coachbridge_Settings::save( 'http://127.0.0.1:9000', "new-secret\n0123456789" ), 'notice' );
		coachbridge_assert_same( 'http://127.0.0.1:8765', get_option( 'coachbridge_bridge_url' ), 'url after rejected saves' );
		coachbridge_assert_same( 'test-secret-0123456789', get_option( 'coachbridge_shared_secret' ), 'secret after rejected saves' );

		coachbridge_assert_same( 'saved', Coachbridge_Settings::save( 'http://127.0.0.1:9000/', '' ), 'notice' );
		coachbridge_assert_same( 'http://127.0.0.1:9000', get_option( 'coachbridge_bridge_url' ), 'saved url' );
		coachbridge_assert_same( 'test-secret-0123456789', get_option( 'coachbridge_shared_secret' ), 'secret kept by an empty field' );

		coachbridge_assert_same( 'saved', Coachbridge_Settings::save( 'http://127.0.0.1:9000', 'new-secret-0123456789' ), 'notice' );
		coachbridge_assert_same( 'new-secret-0123456789', get_option( 'coachbridge_shared_secret' ), 'saved secret' );
	}
);

coachbridge_test(
	'settings form checks nonce then capability',
	function () {
		$_POST = array(
			'_wpnonce'                  => 'valid-nonce-coachbridge_save_settings',
			'coachbridge_bridge_url'    => 'http://127.0.0.1:9000',
			'coachbridge_shared_secret' => 'new-secret-0123456789',
		);
		try {
			Coachbridge_Settings::handle_save();
			throw new Exception( 'handle_save() returned for a user without manage_options' );
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_contains( 'wp_die', $halt->getMessage() );
		}
		coachbridge_assert_same( array( 'check_admin_referer', 'current_user_can' ), $GLOBALS['coachbridge_test_calls'], 'checks in order' );
		coachbridge_assert_same( 'http://127.0.0.1:8765', get_option( 'coachbridge_bridge_url' ), 'url after a rejected save' );
	}
);

coachbridge_test(
	'settings form rejects a bad nonce',
	function () {
		$GLOBALS['coachbridge_test_user']['capabilities'] = array( 'manage_options' );
		$_POST = array(
			'_wpnonce'               => 'forged',
			'coachbridge_bridge_url' => 'http://127.0.0.1:9000',
		);
		try {
			Coachbridge_Settings::handle_save();
			throw new Exception( 'handle_save() returned for a forged nonce' );
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_same( 'invalid nonce', $halt->getMessage(), 'halt reason' );
		}
		coachbridge_assert_same( 'http://127.0.0.1:8765', get_option( 'coachbridge_bridge_url' ), 'url after a forged save' );
	}
);

coachbridge_test(
	'settings form saves and redirects',
	function () {
		$GLOBALS['coachbridge_test_user']['capabilities'] = array( 'manage_options' );
		$_POST = array(
			'_wpnonce'                  => 'valid-nonce-coachbridge_save_settings',
			'coachbridge_bridge_url'    => 'http://127.0.0.1:9000',
			'coachbridge_shared_secret' => 'new\\"secret-0123456789',
		);
		try {
			Coachbridge_Settings::handle_save();
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_contains( 'coachbridge_notice=saved', $halt->getMessage() );
		}
		coachbridge_assert_same( 'new"secret-0123456789', get_option( 'coachbridge_shared_secret' ), 'unslashed secret' );
	}
);

// Client.

coachbridge_test(
	'client sends a signed request',
	function () {
		coachbridge_queue_response( 200, '<p>hello</p>', 'text/html' );
		$client = Coachbridge_Client::from_settings();
		$html   = $client->page( '/pages/client', array( 'view' => 'week' ), 42 );
		coachbridge_assert_same( '<p>hello</p>', $html, 'page' );

		$request = coachbridge_last_request();
		coachbridge_assert_same( 'http://127.0.0.1:8765/pages/client?view=week', $request['url'], 'url' );
		coachbridge_assert_same( 'GET', $request['args']['method'], 'method' );
		coachbridge_assert_same( 5, $request['args']['timeout'], 'timeout' );
		coachbridge_assert_same( 0, $request['args']['redirection'], 'redirection' );
		coachbridge_assert_same( null, $request['args']['body'], 'body' );

		$headers   = $request['args']['headers'];
		$canonical = Coachbridge_Signer::canonical_string( 'GET', '/pages/client', 'view=week', $headers['X-Coachbridge-Timestamp'], $headers['X-Coachbridge-Request-Id'], 42, '' );
		coachbridge_assert_same( '42', $headers['X-Coachbridge-User'], 'user header' );
		coachbridge_assert_same( 'v1=' . Coachbridge_Signer::signature( 'test-secret-0123456789', $canonical ), $headers['X-Coachbridge-Signature'], 'signature' );
		coachbridge_assert( abs( time() - (int) $headers['X-Coachbridge-Timestamp'] ) < 5, 'a current timestamp' );
	}
);

coachbridge_test(
	'client rejects paths outside bridge',
	function () {
		$client = Coachbridge_Client::from_settings();
		foreach ( array( '/wp-admin/', '/pages/../wp-admin', '/pages/./client', '/api/v1/x/', "/pages/client\n", 'pages/client', '/pages/client?x=1', '/pages//client' ) as $path ) {
			$result = $client->request( 'GET', $path );
			coachbridge_assert( is_wp_error( $result ), 'an error for ' . var_export( $path, true ) );
			coachbridge_assert_same( 'coachbridge_invalid_path', $result->get_error_code(), 'error code for ' . var_export( $path, true ) );
		}
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'client reports unconfigured settings',
	function () {
		$GLOBALS['coachbridge_test_options'] = array();
		$client                              = Coachbridge_Client::from_settings();
		coachbridge_assert( is_wp_error( $client ), 'an error' );
		coachbridge_assert_same( 'coachbridge_not_configured', $client->get_error_code(), 'error code' );
	}
);

coachbridge_test(
	'client page errors by status',
	function () {
		$client = Coachbridge_Client::from_settings();
		$cases  = array(
			array( 404, '{"error": {"code": "not_found", "message": "program 3 not found"}}', 'coachbridge_not_found' ),
			array( 401, '{"error": {"code": "unauthorized", "message": "expired: the timestamp is 400 seconds old"}}', 'coachbridge_unavailable' ),
			array( 500, '{"error": {"code": "internal_error", "message": "internal error"}}', 'coachbridge_unavailable' ),
			array( 502, '<html>Bad gateway</html>', 'coachbridge_unavailable' ),
			array( 302, '', 'coachbridge_unavailable' ),
		);
		foreach ( $cases as $case ) {
			coachbridge_queue_response( $case[0], $case[1] );
			$result = $client->page( '/pages/client', array(), 42 );
			coachbridge_assert( is_wp_error( $result ), 'an error for HTTP ' . $case[0] );
			coachbridge_assert_same( $case[2], $result->get_error_code(), 'error code for HTTP ' . $case[0] );
			coachbridge_assert_same( array( 'status' => $case[0] ), $result->get_error_data(), 'error data for HTTP ' . $case[0] );
		}
		coachbridge_queue_response( 401, '{"error": {"code": "unauthorized", "message": "bad signature: no configured secret produces it"}}' );
		$result = $client->page( '/pages/client', array(), 42 );
		coachbridge_assert_contains( 'bad signature', $result->get_error_message() );

		$result = $client->page( '/pages/client', array(), 42 );
		coachbridge_assert_same( 'coachbridge_unavailable', $result->get_error_code(), 'error code without a connection' );
		coachbridge_assert_contains( 'Failed to connect', $result->get_error_message() );
	}
);

// Account tab.

coachbridge_test(
	'account nav links to the tab',
	function () {
		$html = coachbridge_capture( array( 'Coachbridge_Account', 'render_nav' ) );
		coachbridge_assert_contains( 'href="https://site.example/account/?action=coaching"', $html );
		coachbridge_assert_contains( '>Coaching</a>', $html );
		coachbridge_assert_not_contains( 'mepr-active-nav-tab', $html );

		$_GET['action'] = 'coaching';
		$html           = coachbridge_capture( array( 'Coachbridge_Account', 'render_nav' ) );
		coachbridge_assert_contains( 'mepr-active-nav-tab', $html );
	}
);

coachbridge_test(
	'account tab ignores other actions',
	function () {
		$html = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'subscriptions', array() );
			}
		);
		coachbridge_assert_same( '', $html, 'output' );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'account tab shows bridge page',
	function () {
		$_GET = array(
			'action'  => 'coaching',
			'view'    => 'Week"><script>',
			'program' => '3abc',
			'other'   => 'dropped',
		);
		$page = '<form data-coachbridge-path="/api/v1/enrollments/5/messages"><label for="m1">Done</label>'
			. '<input type="checkbox" id="m1" checked data-coachbridge-path="/api/v1/enrollments/5/milestones/1/tick">'
			. '<textarea name="text"></textarea><button type="submit">Send</button></form>'
			. '<script>alert(1)</script><a href="?action=coaching&amp;view=all" onclick="steal()">All</a>';
		coachbridge_queue_response( 200, $page, 'text/html' );
		$html = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'coaching', array() );
			}
		);
		coachbridge_assert_contains( '<input type="checkbox" id="m1" checked data-coachbridge-path="/api/v1/enrollments/5/milestones/1/tick">', $html );
		coachbridge_assert_contains( '<form data-coachbridge-path="/api/v1/enrollments/5/messages">', $html );
		coachbridge_assert_contains( '<textarea name="text">', $html );
		coachbridge_assert_contains( '<button type="submit">', $html );
		coachbridge_assert_not_contains( '<script>', $html );
		coachbridge_assert_not_contains( 'onclick', $html );

		$request = coachbridge_last_request();
		$form_action = rawurlencode( 'https://site.example/wp-admin/admin-post.php?action=coachbridge_client_action' );
		coachbridge_assert_same( 'http://127.0.0.1:8765/pages/client?form_action=' . $form_action . '&form_nonce=valid-nonce-coachbridge_client_action&program=3&view=weekscript', $request['url'], 'url' );
		coachbridge_assert_same( '42', $request['args']['headers']['X-Coachbridge-User'], 'user header' );
	}
);

coachbridge_test(
	'account tab when bridge is down',
	function () {
		$html = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'coaching', array() );
			}
		);
		coachbridge_assert_contains( 'Coaching is unavailable right now. Please try again in a few minutes.', $html );
		coachbridge_assert( isset( $GLOBALS['coachbridge_test_transients']['coachbridge_logged_coachbridge_unavailable'] ), 'a logged error' );
	}
);

coachbridge_test(
	'account tab when bridge fails',
	function () {
		foreach ( array( 500, 503, 401 ) as $status ) {
			coachbridge_queue_response( $status, '{"error": {"code": "x", "message": "failed"}}' );
			$html = coachbridge_capture(
				function () {
					Coachbridge_Account::render_content( 'coaching', array() );
				}
			);
			coachbridge_assert_contains( 'Coaching is unavailable right now.', $html );
		}
	}
);

coachbridge_test(
	'account tab when not configured',
	function () {
		$GLOBALS['coachbridge_test_options'] = array();
		$html                                = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'coaching', array() );
			}
		);
		coachbridge_assert_contains( 'Coaching is unavailable right now.', $html );
	}
);

coachbridge_test(
	'account tab when page not found',
	function () {
		coachbridge_queue_response( 404, '{"error": {"code": "not_found", "message": "program 9 not found"}}' );
		$html = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'coaching', array() );
			}
		);
		coachbridge_assert_contains( 'This coaching page was not found.', $html );
	}
);

coachbridge_test(
	'account tab for a logged out visitor',
	function () {
		$GLOBALS['coachbridge_test_user']['id'] = 0;
		$html                                   = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'coaching', array() );
			}
		);
		coachbridge_assert_contains( 'Please log in', $html );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'account tab disables caching and loads its assets',
	function () {
		$_GET['action'] = 'coaching';
		Coachbridge_Account::prepare_tab();
		coachbridge_assert_same( array( 'nocache_headers', 'wp_enqueue_script:coachbridge', 'wp_localize_script:coachbridgeSettings', 'wp_enqueue_style:coachbridge-tab' ), $GLOBALS['coachbridge_test_calls'], 'calls' );
	}
);

coachbridge_test(
	'errors are logged once per interval',
	function () {
		$log = tempnam( sys_get_temp_dir(), 'coachbridge-log' );
		$old = ini_set( 'error_log', $log );
		try {
			Coachbridge_Pages::log_error( new WP_Error( 'coachbridge_unavailable', 'Could not reach bridge' ) );
			Coachbridge_Pages::log_error( new WP_Error( 'coachbridge_unavailable', 'Could not reach bridge' ) );
		} finally {
			ini_set( 'error_log', $old );
		}
		$lines = file( $log );
		unlink( $log );
		coachbridge_assert_same( 1, count( $lines ), 'log lines' );
		coachbridge_assert_contains( 'Could not reach bridge (coachbridge_unavailable)', $lines[0] );
	}
);

// REST proxy.

coachbridge_test(
	'proxy permission needs login and nonce',
	function () {
		$valid = new WP_REST_Request( array(), array( 'X-WP-Nonce' => 'valid-nonce-wp_rest' ) );
		coachbridge_assert_same( true, Coachbridge_Proxy::check_permission( $valid ), 'permission with login and nonce' );

		$forged = Coachbridge_Proxy::check_permission( new WP_REST_Request( array(), array( 'X-WP-Nonce' => 'forged' ) ) );
		coachbridge_assert_same( array( 'status' => 403 ), $forged->get_error_data(), 'error data for a forged nonce' );
		$missing = Coachbridge_Proxy::check_permission( new WP_REST_Request() );
		coachbridge_assert_same( array( 'status' => 403 ), $missing->get_error_data(), 'error data without a nonce' );

		$GLOBALS['coachbridge_test_user']['id'] = 0;
		$logged_out                             = Coachbridge_Proxy::check_permission( $valid );
		coachbridge_assert_same( array( 'status' => 401 ), $logged_out->get_error_data(), 'error data when logged out' );
	}
);

coachbridge_test(
	'proxy allowlist',
	function () {
		$allowed = array(
			array( 'PUT', '/api/v1/enrollments/5/milestones/12/tick' ),
			array( 'DELETE', '/api/v1/enrollments/5/milestones/12/tick' ),
			array( 'PUT', '/api/v1/enrollments/5/habits/3/ticks/2026-03-02' ),
			array( 'DELETE', '/api/v1/enrollments/5/habits/3/ticks/2026-03-02' ),
			array( 'POST', '/api/v1/conversations' ),
			array( 'POST', '/api/v1/conversations/5/messages' ),
		);
		foreach ( $allowed as $route ) {
			coachbridge_assert( Coachbridge_Proxy::is_allowed( $route[0], $route[1] ), 'allowed: ' . implode( ' ', $route ) );
		}
		$rejected = array(
			array( 'GET', '/api/v1/conversations/5/messages' ),
			array( 'POST', '/api/v1/enrollments/5/messages' ),
			array( 'POST', '/api/v1/enrollments/5/milestones/12/tick' ),
			array( 'POST', '/api/v1/conversations/5/messages/' ),
			array( 'POST', "/api/v1/conversations/5/messages\n" ),
			array( 'POST', '/api/v1/conversations/05/messages' ),
			array( 'POST', '/api/v1/conversations/5' ),
			array( 'PUT', '/api/v1/conversations' ),
			array( 'POST', '/api/v1/conversations/12345678901234567890/messages' ),
			array( 'POST', '/api/v1/conversations/5/../../admin/programs' ),
			array( 'POST', '/pages/admin/programs' ),
			array( 'DELETE', '/api/v1/programs/1' ),
		);
		foreach ( $rejected as $route ) {
			coachbridge_assert( ! Coachbridge_Proxy::is_allowed( $route[0], $route[1] ), 'rejected: ' . var_export( $route, true ) );
		}
	}
);

coachbridge_test(
	'proxy rejects a path outside the allowlist',
	function () {
		$request = new WP_REST_Request(
			array(
				'method' => 'DELETE',
				'path'   => '/api/v1/programs/1',
			)
		);
		$result  = Coachbridge_Proxy::handle( $request );
		coachbridge_assert_same( 'coachbridge_not_allowed', $result->get_error_code(), 'error code' );
		coachbridge_assert_same( array( 'status' => 400 ), $result->get_error_data(), 'error data' );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'proxy forwards a signed message',
	function () {
		coachbridge_queue_response( 201, '{"id": 7, "body": "Hello coach"}' );
		$request  = new WP_REST_Request(
			array(
				'method' => 'post',
				'path'   => '/api/v1/conversations/5/messages',
				'body'   => array( 'body' => 'Hello coach' ),
			)
		);
		$response = Coachbridge_Proxy::handle( $request );
		coachbridge_assert_same( 201, $response->status, 'status' );
		coachbridge_assert_same(
			array(
				'id'   => 7,
				'body' => 'Hello coach',
			),
			$response->data,
			'data'
		);

		$sent = coachbridge_last_request();
		coachbridge_assert_same( 'http://127.0.0.1:8765/api/v1/conversations/5/messages', $sent['url'], 'url' );
		coachbridge_assert_same( 'POST', $sent['args']['method'], 'method' );
		coachbridge_assert_same( '{"body":"Hello coach"}', $sent['args']['body'], 'body' );
		coachbridge_assert_same( 'application/json', $sent['args']['headers']['Content-Type'], 'content type' );
		coachbridge_assert_same( '42', $sent['args']['headers']['X-Coachbridge-User'], 'user header' );
	}
);

coachbridge_test(
	'proxy passes bridge errors through',
	function () {
		coachbridge_queue_response( 404, '{"error": {"code": "not_found", "message": "enrollment 5 not found"}}' );
		$request  = new WP_REST_Request(
			array(
				'method' => 'PUT',
				'path'   => '/api/v1/enrollments/5/milestones/12/tick',
			)
		);
		$response = Coachbridge_Proxy::handle( $request );
		coachbridge_assert_same( 404, $response->status, 'status' );
		coachbridge_assert_same( 'not_found', $response->data['error']['code'], 'error code' );
		coachbridge_assert_same( null, coachbridge_last_request()['args']['body'], 'body of a tick' );
	}
);

coachbridge_test(
	'proxy returns empty responses',
	function () {
		coachbridge_queue_response( 204, '' );
		$request  = new WP_REST_Request(
			array(
				'method' => 'DELETE',
				'path'   => '/api/v1/enrollments/5/milestones/12/tick',
			)
		);
		$response = Coachbridge_Proxy::handle( $request );
		coachbridge_assert_same( 204, $response->status, 'status' );
		coachbridge_assert_same( null, $response->data, 'data' );
	}
);

coachbridge_test(
	'proxy when bridge is down',
	function () {
		$request = new WP_REST_Request(
			array(
				'method' => 'PUT',
				'path'   => '/api/v1/enrollments/5/milestones/12/tick',
			)
		);
		$result  = Coachbridge_Proxy::handle( $request );
		coachbridge_assert_same( 'coachbridge_unavailable', $result->get_error_code(), 'error code' );
		coachbridge_assert_same( array( 'status' => 503 ), $result->get_error_data(), 'error data' );

		coachbridge_queue_response( 502, '<html>Bad gateway</html>', 'text/html' );
		$result = Coachbridge_Proxy::handle( $request );
		coachbridge_assert_same( array( 'status' => 503 ), $result->get_error_data(), 'error data for a body that is not JSON' );
	}
);

coachbridge_test(
	'proxy rejects a large body',
	function () {
		$request = new WP_REST_Request(
			array(
				'method' => 'POST',
				'path'   => '/api/v1/conversations/5/messages',
				'body'   => array( 'body' => str_repeat( 'a', 70000 ) ),
			)
		);
		$result  = Coachbridge_Proxy::handle( $request );
		coachbridge_assert_same( array( 'status' => 413 ), $result->get_error_data(), 'error data' );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

// Form handler of the Coaching tab.

/**
 * Runs the form handler and returns the redirect location.
 *
 * @param array $post The posted fields.
 * @return string
 */
function coachbridge_submit_form( $post ) {
	$_POST = $post + array( '_wpnonce' => 'valid-nonce-coachbridge_client_action' );
	try {
		Coachbridge_Forms::handle();
	} catch ( Coachbridge_Test_Halt $halt ) {
		coachbridge_assert_contains( 'redirect: ', $halt->getMessage() );
		return substr( $halt->getMessage(), strlen( 'redirect: ' ) );
	}
	throw new Exception( 'handle() returned without a redirect' );
}

/**
 * Returns method and path of every request sent to bridge.
 *
 * @return array<int, string>
 */
function coachbridge_sent_routes() {
	$routes = array();
	foreach ( $GLOBALS['coachbridge_test_http']['requests'] as $request ) {
		$routes[] = $request['args']['method'] . ' ' . substr( $request['url'], strlen( 'http://127.0.0.1:8765' ) );
	}
	return $routes;
}

coachbridge_test(
	'form checks nonce first',
	function () {
		$_POST = array(
			'_wpnonce'       => 'forged',
			'coachbridge_do' => 'save_ticks',
		);
		try {
			Coachbridge_Forms::handle();
			throw new Exception( 'handle() returned for a forged nonce' );
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_same( 'invalid nonce', $halt->getMessage(), 'halt reason' );
		}
		coachbridge_assert_same( array( 'check_admin_referer' ), $GLOBALS['coachbridge_test_calls'], 'checks in order' );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'form needs a logged-in user',
	function () {
		$GLOBALS['coachbridge_test_user'] = array(
			'id'           => 0,
			'capabilities' => array(),
		);
		$_POST = array(
			'_wpnonce'       => 'valid-nonce-coachbridge_client_action',
			'coachbridge_do' => 'save_ticks',
		);
		try {
			Coachbridge_Forms::handle();
			throw new Exception( 'handle() returned for a logged-out visitor' );
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_contains( 'wp_die', $halt->getMessage() );
		}
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'form sends changed ticks only',
	function () {
		for ( $i = 0; $i < 4; $i++ ) {
			coachbridge_queue_response( 200, '{}' );
		}
		$location = coachbridge_submit_form(
			array(
				'coachbridge_do'     => 'save_ticks',
				'coachbridge_return' => 'view=program&enrollment=5&from=2026-03-01&to=2026-03-14&evil=<x>',
				'enrollment'         => '5',
				'milestone_done'     => array( '1', '2' ),
				'milestone_was'      => array( '2', '3' ),
				'habit_done'         => array( '7/2026-03-02', '7/2026-03-03', '7/2026-03-03', 'x/../../admin', '8/2026-3-1' ),
				'habit_was'          => array( '7/2026-03-03', '7/2026-03-04' ),
			)
		);
		coachbridge_assert_same(
			array(
				'PUT /api/v1/enrollments/5/milestones/1/tick',
				'DELETE /api/v1/enrollments/5/milestones/3/tick',
				'PUT /api/v1/enrollments/5/habits/7/ticks/2026-03-02',
				'DELETE /api/v1/enrollments/5/habits/7/ticks/2026-03-04',
			),
			coachbridge_sent_routes(),
			'requests'
		);
		coachbridge_assert_same( '42', coachbridge_last_request()['args']['headers']['X-Coachbridge-User'], 'user header' );
		coachbridge_assert_same( 'https://site.example/account/?action=coaching&view=program&enrollment=5&from=2026-03-01&to=2026-03-14&coachbridge_notice=saved', $location, 'redirect' );
	}
);

coachbridge_test(
	'form stops at the first failure',
	function () {
		coachbridge_queue_response( 403, '{"error": {"code": "forbidden", "message": "enrollment 5 belongs to another user"}}' );
		$location = coachbridge_submit_form(
			array(
				'coachbridge_do' => 'save_ticks',
				'enrollment'     => '5',
				'milestone_done' => array( '1', '2' ),
			)
		);
		coachbridge_assert_same( 1, count( $GLOBALS['coachbridge_test_http']['requests'] ), 'requests sent' );
		coachbridge_assert_contains( 'coachbridge_notice=not_allowed', $location );
	}
);

coachbridge_test(
	'form notices by status',
	function () {
		$cases = array(
			array( 404, 'failed' ),
			array( 409, 'failed' ),
			array( 500, 'unavailable' ),
			array( 401, 'unavailable' ),
		);
		foreach ( $cases as $case ) {
			coachbridge_test_reset();
			coachbridge_queue_response( $case[0], '{"error": {"code": "x", "message": "failed"}}' );
			$location = coachbridge_submit_form(
				array(
					'coachbridge_do' => 'save_ticks',
					'enrollment'     => '5',
					'milestone_done' => array( '1' ),
				)
			);
			coachbridge_assert_contains( 'coachbridge_notice=' . $case[1], $location );
		}
		coachbridge_test_reset();
		$location = coachbridge_submit_form(
			array(
				'coachbridge_do' => 'save_ticks',
				'enrollment'     => '5',
				'milestone_done' => array( '1' ),
			)
		);
		coachbridge_assert_contains( 'coachbridge_notice=unavailable', $location );
	}
);

coachbridge_test(
	'form rejects incomplete input',
	function () {
		$forms = array(
			array( 'coachbridge_do' => 'save_ticks' ),
			array( 'coachbridge_do' => 'launch_rockets' ),
			array(
				'coachbridge_do' => 'send_message',
				'conversation'   => '4',
				'body'           => " \r\n ",
			),
			array(
				'coachbridge_do' => 'start_conversation',
				'partner'        => '0',
				'body'           => 'Hi',
			),
		);
		foreach ( $forms as $form ) {
			$location = coachbridge_submit_form( $form );
			coachbridge_assert_contains( 'coachbridge_notice=invalid', $location );
		}
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'form sends a message as written',
	function () {
		coachbridge_queue_response( 201, '{"id": 9}' );
		$location = coachbridge_submit_form(
			array(
				'coachbridge_do'     => 'send_message',
				'coachbridge_return' => 'view=messages&conversation=4',
				'conversation'       => '4',
				'body'               => "I\\'m at <3 sessions\r\nsee you",
			)
		);
		$sent = coachbridge_last_request();
		coachbridge_assert_same( 'POST /api/v1/conversations/4/messages', coachbridge_sent_routes()[0], 'request' );
		coachbridge_assert_same( '{"body":"I\'m at <3 sessions\nsee you"}', $sent['args']['body'], 'body' );
		coachbridge_assert_same( 'https://site.example/account/?action=coaching&view=messages&conversation=4&coachbridge_notice=sent', $location, 'redirect' );
	}
);

coachbridge_test(
	'form starts a conversation',
	function () {
		coachbridge_queue_response( 201, '{"id": 11, "partner": {"id": 3, "name": "Ana"}}' );
		coachbridge_queue_response( 201, '{"id": 20}' );
		$location = coachbridge_submit_form(
			array(
				'coachbridge_do'     => 'start_conversation',
				'coachbridge_return' => 'view=messages',
				'partner'            => '3',
				'body'               => 'Hello',
			)
		);
		coachbridge_assert_same( array( 'POST /api/v1/conversations', 'POST /api/v1/conversations/11/messages' ), coachbridge_sent_routes(), 'requests' );
		coachbridge_assert_same( '{"partner_id":3}', $GLOBALS['coachbridge_test_http']['requests'][0]['args']['body'], 'first body' );
		coachbridge_assert_same( 'https://site.example/account/?action=coaching&view=messages&conversation=11&coachbridge_notice=sent', $location, 'redirect' );
	}
);

coachbridge_test(
	'form with a partner not allowed',
	function () {
		coachbridge_queue_response( 403, '{"error": {"code": "forbidden", "message": "you cannot message user 3"}}' );
		$location = coachbridge_submit_form(
			array(
				'coachbridge_do' => 'start_conversation',
				'partner'        => '3',
				'body'           => 'Hello',
			)
		);
		coachbridge_assert_same( 1, count( $GLOBALS['coachbridge_test_http']['requests'] ), 'requests sent' );
		coachbridge_assert_contains( 'coachbridge_notice=not_allowed', $location );
	}
);

coachbridge_test(
	'form return query keeps known values',
	function () {
		$query = Coachbridge_Forms::return_query( 'view=Admin&enrollment=-3&conversation=abc&from=2026-03-01x&to[]=1&other=1' );
		coachbridge_assert_same( array( 'action' => 'coaching' ), $query, 'query' );
		$query = Coachbridge_Forms::return_query( 'view=messages&conversation=8' );
		coachbridge_assert_same(
			array(
				'action'       => 'coaching',
				'view'         => 'messages',
				'conversation' => '8',
			),
			$query,
			'query'
		);
	}
);

coachbridge_test(
	'account tab shows the form notice',
	function () {
		$_GET = array(
			'action'             => 'coaching',
			'coachbridge_notice' => 'saved',
		);
		coachbridge_queue_response( 200, '<p>page</p>', 'text/html' );
		$html = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'coaching', array() );
			}
		);
		coachbridge_assert_contains( '<div class="coachbridge-notice" role="alert"><p>Your changes were saved.</p></div><p>page</p>', $html );

		$_GET['coachbridge_notice'] = '<script>';
		coachbridge_queue_response( 200, '<p>page</p>', 'text/html' );
		$html = coachbridge_capture(
			function () {
				Coachbridge_Account::render_content( 'coaching', array() );
			}
		);
		coachbridge_assert_not_contains( 'coachbridge-notice', $html );
	}
);

coachbridge_test(
	'account tab passes page parameters',
	function () {
		$_GET = array(
			'view'         => 'program',
			'enrollment'   => '12',
			'conversation' => 'x',
			'from'         => '2026-03-01',
			'to'           => '2026-03-01"',
		);
		$query = Coachbridge_Account::page_query();
		coachbridge_assert_same( 'program', $query['view'], 'view' );
		coachbridge_assert_same( '12', $query['enrollment'], 'enrollment' );
		coachbridge_assert_same( '2026-03-01', $query['from'], 'from' );
		coachbridge_assert( ! isset( $query['conversation'] ), 'no conversation' );
		coachbridge_assert( ! isset( $query['to'] ), 'no to' );
		coachbridge_assert_same( 'https://site.example/wp-admin/admin-post.php?action=coachbridge_client_action', $query['form_action'], 'form action' );
		coachbridge_assert_same( 'valid-nonce-coachbridge_client_action', $query['form_nonce'], 'form nonce' );
	}
);

// Admin menu, console pages and their forms.

if ( ! function_exists( 'wp_register_style' ) ) {
	function wp_register_style( $handle, $src, $deps = array(), $ver = false ) {
		coachbridge_test_record( 'wp_register_style:' . $handle );
	}
}

if ( ! function_exists( 'wp_enqueue_style' ) ) {
	function wp_enqueue_style( $handle ) {
		coachbridge_test_record( 'wp_enqueue_style:' . $handle );
	}
}

if ( ! function_exists( 'wp_add_inline_style' ) ) {
	function wp_add_inline_style( $handle, $css ) {
		$GLOBALS['coachbridge_test_inline_styles'][ $handle ] = $css;
	}
}

if ( ! function_exists( 'delete_transient' ) ) {
	function delete_transient( $name ) {
		unset( $GLOBALS['coachbridge_test_transients'][ $name ] );
		return true;
	}
}

if ( ! function_exists( 'sanitize_user' ) ) {
	function sanitize_user( $login, $strict = false ) {
		$login = wp_strip_all_tags( $login );
		return trim( preg_replace( $strict ? '/[^a-z0-9 _.\-@]/i' : '/[\r\n\t]/', '', $login ) );
	}
}

if ( ! function_exists( 'sanitize_email' ) ) {
	function sanitize_email( $email ) {
		return preg_replace( '/[^a-z0-9+_.@\-]/i', '', (string) $email );
	}
}

if ( ! function_exists( 'is_email' ) ) {
	function is_email( $email ) {
		return filter_var( $email, FILTER_VALIDATE_EMAIL ) ? $email : false;
	}
}

if ( ! function_exists( 'wp_generate_password' ) ) {
	function wp_generate_password( $length = 12 ) {
		return str_repeat( 'p', $length );
	}
}

if ( ! function_exists( 'wp_insert_user' ) ) {
	function wp_insert_user( $data ) {
		if ( in_array( $data['user_login'], $GLOBALS['coachbridge_test_existing_logins'], true ) ) {
			return new WP_Error( 'existing_user_login', 'Sorry, that username already exists!' );
		}
		$GLOBALS['coachbridge_test_inserted_users'][] = $data;
		return 77;
	}
}

if ( ! function_exists( 'wp_new_user_notification' ) ) {
	function wp_new_user_notification( $user_id, $deprecated = null, $notify = '' ) {
		coachbridge_test_record( 'wp_new_user_notification:' . $user_id . ':' . $notify );
	}
}

if ( ! function_exists( 'sanitize_file_name' ) ) {
	function sanitize_file_name( $name ) {
		return preg_replace( '/[^A-Za-z0-9._\-]/', '', (string) $name );
	}
}

/**
 * Resets the state that the admin tests add to the common stubs.
 *
 * @param array $capabilities Capabilities of the acting user 42.
 */
function coachbridge_admin_reset( $capabilities ) {
	$GLOBALS['coachbridge_test_user']['capabilities'] = $capabilities;
	$GLOBALS['coachbridge_test_inline_styles']        = array();
	$GLOBALS['coachbridge_test_inserted_users']       = array();
	$GLOBALS['coachbridge_test_existing_logins']      = array( 'taken' );
}

/**
 * Returns the notice stored for user 42, or null.
 *
 * @return array|null
 */
function coachbridge_admin_notice() {
	$notice = get_transient( 'coachbridge_admin_notice_42' );
	return false === $notice ? null : $notice;
}

/**
 * Runs the admin form handler and returns the redirect location it halted with.
 *
 * @return string
 */
function coachbridge_admin_handle() {
	try {
		Coachbridge_Admin_Forms::handle();
	} catch ( Coachbridge_Test_Halt $halt ) {
		return $halt->getMessage();
	}
	throw new Exception( 'handle() returned without a redirect' );
}

/**
 * Returns the JSON body of the last request as an array.
 *
 * @return array
 */
function coachbridge_admin_sent_body() {
	return json_decode( coachbridge_last_request()['args']['body'], true );
}

coachbridge_test(
	'admin form hook registered',
	function () {
		$GLOBALS['coachbridge_test_hooks'] = array();
		Coachbridge_Admin::register_hooks();
		coachbridge_assert( isset( $GLOBALS['coachbridge_test_hooks']['admin_post_coachbridge_admin_action'] ), 'a callback on admin_post_coachbridge_admin_action' );
	}
);

coachbridge_test(
	'admin page passes sanitized arguments',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_GET = array(
			'page'    => 'coachbridge-clients',
			'client'  => '12',
			'q'       => '<b>ana</b> smith',
			'view'    => 'Detail',
			'paged'   => '2',
			'program' => '0',
		);
		coachbridge_queue_response( 200, '<table></table>', 'text/html' );
		$html = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
		coachbridge_assert_contains( '<h1>Clients</h1>', $html );
		coachbridge_assert_contains( '<table>', $html );
		coachbridge_assert_same(
			'http://127.0.0.1:8765/pages/admin/clients?client=12&form_action=https%3A%2F%2Fsite.example%2Fwp-admin%2Fadmin-post.php&form_nonce=valid-nonce-coachbridge_admin_action&paged=2&q=ana%20smith&user_edit_url=https%3A%2F%2Fsite.example%2Fwp-admin%2Fuser-edit.php&view=detail',
			coachbridge_last_request()['url'],
			'url'
		);
	}
);

coachbridge_test(
	'admin page passes filters',
	function () {
		$_GET = array(
			'page'      => 'coachbridge',
			'sort'      => 'Name',
			'order'     => 'desc',
			'status'    => 'all',
			'type'      => 'habit_ticked',
			'off_track' => '1',
			'from'      => '2026-02-01',
			'to'        => '2026-02-31"><script>',
			'per_page'  => '500',
			'section'   => 'clients',
		);
		coachbridge_assert_same(
			array(
				'status'    => 'all',
				'sort'      => 'name',
				'order'     => 'desc',
				'type'      => 'habit_ticked',
				'per_page'  => '100',
				'off_track' => '1',
				'from'      => '2026-02-01',
			),
			Coachbridge_Admin::page_query(),
			'query'
		);
	}
);

coachbridge_test(
	'admin page needs manage_options',
	function () {
		$_GET['page'] = 'coachbridge-programs';
		try {
			coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
			throw new Exception( 'render_page() returned for a user without manage_options' );
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_contains( 'wp_die', $halt->getMessage() );
		}
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'coach page for a non-coach',
	function () {
		$_GET['page'] = 'coachbridge-coach';
		coachbridge_queue_response( 404, '{"error": {"code": "not_found", "message": "page not found"}}' );
		$html = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
		coachbridge_assert_contains( 'You are not registered as a coach.', $html );
		coachbridge_assert_same( 'http://127.0.0.1:8765/pages/coach', coachbridge_last_request()['url'], 'url' );
	}
);

coachbridge_test(
	'coach view picks the section',
	function () {
		coachbridge_admin_reset( array( 'read' ) );
		$_GET = array(
			'page'    => 'coachbridge-coach',
			'section' => 'clients',
			'client'  => '5',
		);
		coachbridge_queue_response( 200, '<p>Cleo</p>', 'text/html' );
		$html = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
		coachbridge_assert_contains( '<p>Cleo</p>', $html );
		// A coach gets no form target: bridge renders no forms for coaches.
		coachbridge_assert_same( 'http://127.0.0.1:8765/pages/admin/clients?client=5', coachbridge_last_request()['url'], 'url' );

		$_GET['section'] = '../settings';
		coachbridge_assert_same( '/pages/coach', Coachbridge_Admin::bridge_path( 'coachbridge-coach' ), 'path of an unknown section' );
		$_GET['section'] = 'programs';
		coachbridge_assert_same( '/pages/admin/programs', Coachbridge_Admin::bridge_path( 'coachbridge-coach' ), 'path of the programs section' );
		coachbridge_assert_same( '/pages/admin/activity', Coachbridge_Admin::bridge_path( 'coachbridge' ), 'path of an admin slug' );
	}
);

coachbridge_test(
	'admin page shows bridge refusals',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_GET['page'] = 'coachbridge-programs';
		$cases        = array(
			403 => 'only WordPress administrators can create programs',
			409 => 'locked <because>',
			400 => 'invalid per_page 500',
		);
		foreach ( $cases as $status => $message ) {
			coachbridge_queue_response( $status, wp_json_encode( array( 'error' => array( 'code' => 'x', 'message' => $message ) ) ) );
			$html = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
			coachbridge_assert_contains( esc_html( $message ), $html );
		}
		coachbridge_queue_response( 500, '{"error": {"code": "internal_error", "message": "internal error"}}' );
		$html = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
		coachbridge_assert_contains( 'Coaching is unavailable right now.', $html );
		coachbridge_assert( isset( $GLOBALS['coachbridge_test_transients']['coachbridge_logged_coachbridge_unavailable'] ), 'a logged error' );
	}
);

coachbridge_test(
	'admin page keeps form controls',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_GET['page'] = 'coachbridge-clients';
		$page         = '<form method="post" action="https://site.example/wp-admin/admin-post.php">'
			. '<input type="hidden" name="_wpnonce" value="n"><select name="cohort_id">'
			. '<optgroup label="Strength"><option value="3" selected>Ana</option></optgroup></select>'
			. '<button type="submit" class="button" onclick="steal()">Add</button></form><script>alert(1)</script>';
		coachbridge_queue_response( 200, $page, 'text/html' );
		$html = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
		coachbridge_assert_contains( '<optgroup label="Strength">', $html );
		coachbridge_assert_contains( '<option value="3" selected>', $html );
		coachbridge_assert_contains( '<input type="hidden" name="_wpnonce" value="n">', $html );
		coachbridge_assert_contains( '<form method="post" action="https://site.example/wp-admin/admin-post.php">', $html );
		coachbridge_assert_not_contains( '<script>', $html );
		coachbridge_assert_not_contains( 'onclick', $html );
	}
);

coachbridge_test(
	'admin page shows a notice once',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_GET['page'] = 'coachbridge-programs';
		set_transient(
			'coachbridge_admin_notice_42',
			array(
				'type'    => 'error',
				'message' => 'Cohort <b>full</b>',
			)
		);
		coachbridge_queue_response( 200, '<p>page</p>', 'text/html' );
		$first = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
		coachbridge_assert_contains( '<div class="notice notice-error is-dismissible"><p>Cohort &lt;b&gt;full&lt;/b&gt;</p></div>', $first );
		coachbridge_queue_response( 200, '<p>page</p>', 'text/html' );
		$second = coachbridge_capture( array( 'Coachbridge_Admin', 'render_page' ) );
		coachbridge_assert_not_contains( 'notice-error', $second );
	}
);

coachbridge_test(
	'admin styles are inlined and cached',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_GET['page'] = 'coachbridge-clients';
		coachbridge_queue_response( 200, '.coachbridge-console progress { width: 80px; }', 'text/css' );
		Coachbridge_Admin::enqueue( 'toplevel_page_coachbridge' );
		coachbridge_assert_same( '.coachbridge-console progress { width: 80px; }', $GLOBALS['coachbridge_test_inline_styles']['coachbridge-admin'], 'inline style' );
		coachbridge_assert_same( 'http://127.0.0.1:8765/pages/admin/admin.css', coachbridge_last_request()['url'], 'url' );

		Coachbridge_Admin::enqueue( 'toplevel_page_coachbridge' );
		coachbridge_assert_same( 1, count( $GLOBALS['coachbridge_test_http']['requests'] ), 'requests after a second page' );

		$GLOBALS['coachbridge_test_transients'] = array();
		coachbridge_queue_response( 200, '</style><script>alert(1)</script>', 'text/css' );
		coachbridge_assert_same( '', Coachbridge_Admin::stylesheet(), 'stylesheet with a tag' );
	}
);

coachbridge_test(
	'admin forms check nonce then capability',
	function () {
		coachbridge_admin_reset( array( 'read' ) );
		$_POST = array(
			'_wpnonce'         => 'valid-nonce-coachbridge_admin_action',
			'coachbridge_form' => 'program-delete',
			'program_id'       => '3',
		);
		try {
			Coachbridge_Admin_Forms::handle();
			throw new Exception( 'handle() returned for a user without manage_options' );
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_contains( 'wp_die', $halt->getMessage() );
		}
		coachbridge_assert_same( array( 'check_admin_referer', 'current_user_can' ), $GLOBALS['coachbridge_test_calls'], 'checks in order' );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'admin forms reject a bad nonce',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array(
			'_wpnonce'         => 'forged',
			'coachbridge_form' => 'program-delete',
			'program_id'       => '3',
		);
		try {
			Coachbridge_Admin_Forms::handle();
			throw new Exception( 'handle() returned for a forged nonce' );
		} catch ( Coachbridge_Test_Halt $halt ) {
			coachbridge_assert_same( 'invalid nonce', $halt->getMessage(), 'halt reason' );
		}
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'admin form forwards fields',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array(
			'action'           => 'coachbridge_admin_action',
			'_wpnonce'         => 'valid-nonce-coachbridge_admin_action',
			'_wp_http_referer' => '/wp-admin/admin.php?page=coachbridge-programs',
			'coachbridge_form' => 'program-update',
			'program_id'       => '3',
			'title'            => 'Strength \\"2\\" < 3 & more',
			'description'      => "Line one\r\nline two\x07",
			'milestone_title'  => array( 'Push-up', '' ),
			'memberships'      => array( '', '5', array( 'nested' ) ),
			'Bad-Name'         => 'dropped',
		);
		coachbridge_queue_response( 200, '{"message": "Program saved.", "return_query": {"page": "coachbridge-programs", "program": "3", "evil": "x"}}' );
		$location = coachbridge_admin_handle();
		coachbridge_assert_same( 'redirect: https://site.example/wp-admin/admin.php?page=coachbridge-programs&program=3', $location, 'redirect' );

		$request = coachbridge_last_request();
		coachbridge_assert_same( 'http://127.0.0.1:8765/pages/admin/forms/program-update', $request['url'], 'url' );
		coachbridge_assert_same( 'POST', $request['args']['method'], 'method' );
		coachbridge_assert_same( '42', $request['args']['headers']['X-Coachbridge-User'], 'user header' );
		coachbridge_assert_same(
			array(
				'program_id'      => '3',
				'title'           => 'Strength "2" < 3 & more',
				'description'     => "Line one\nline two",
				'milestone_title' => array( 'Push-up', '' ),
				'memberships'     => array( '', '5' ),
			),
			coachbridge_admin_sent_body(),
			'forwarded fields'
		);
		coachbridge_assert_same(
			array(
				'type'    => 'success',
				'message' => 'Program saved.',
			),
			coachbridge_admin_notice(),
			'notice'
		);
	}
);

coachbridge_test(
	'admin form failure keeps bridge message',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array(
			'coachbridge_form' => 'client-add',
			'wp_user_id'       => '9',
			'cohort_id'        => '4',
		);
		coachbridge_queue_response( 409, '{"error": {"code": "conflict", "message": "cohort \'Ana\'s\' is full: 3 active clients of 3"}}' );
		$result = Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( 'https://site.example/wp-admin/admin.php?page=coachbridge', $result['redirect'], 'redirect' );
		coachbridge_assert_same( 'error', coachbridge_admin_notice()['type'], 'notice type' );
		coachbridge_assert_contains( 'is full: 3 active clients of 3', coachbridge_admin_notice()['message'] );
	}
);

coachbridge_test(
	'admin form when bridge is down',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array(
			'coachbridge_form' => 'client-unenroll',
			'enrollment_id'    => '7',
		);
		Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( Coachbridge_Pages::unavailable_message(), coachbridge_admin_notice()['message'], 'notice' );
		coachbridge_assert( isset( $GLOBALS['coachbridge_test_transients']['coachbridge_logged_coachbridge_unreachable'] ), 'a logged error' );

		coachbridge_queue_response( 502, '<html>Bad gateway</html>', 'text/html' );
		Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( Coachbridge_Pages::unavailable_message(), coachbridge_admin_notice()['message'], 'notice after HTTP 502' );
	}
);

coachbridge_test(
	'admin form return page must be a coaching page',
	function () {
		coachbridge_assert_same( null, Coachbridge_Admin_Forms::admin_page_url( array( 'page' => 'plugins' ) ), 'foreign page' );
		coachbridge_assert_same(
			'https://site.example/wp-admin/admin.php?page=coachbridge-clients&client=12',
			Coachbridge_Admin_Forms::admin_page_url(
				array(
					'page'    => 'coachbridge-clients',
					'client'  => '12',
					'program' => '0',
					'coach'   => 'x',
				)
			),
			'coaching page'
		);
	}
);

coachbridge_test(
	'admin form unknown name',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST  = array( 'coachbridge_form' => 'launch-rocket' );
		$result = Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
		coachbridge_assert_contains( 'the form is unknown', coachbridge_admin_notice()['message'] );
		coachbridge_assert( isset( $result['redirect'] ), 'a redirect' );
	}
);

coachbridge_test(
	'admin form too large',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array(
			'coachbridge_form' => 'program-create',
			'milestone_title'  => array_fill( 0, 1001, 'x' ),
		);
		Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
		coachbridge_assert_contains( 'too large', coachbridge_admin_notice()['message'] );
	}
);

coachbridge_test(
	'progress export downloads the csv',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array(
			'coachbridge_form' => 'export-progress',
			'program'          => '3',
			'status'           => 'all',
			'sort'             => 'name',
			'order'            => 'sideways',
			'off_track'        => '1',
			'q'                => '<b>Zoë</b>',
		);
		$csv = "\xEF\xBB\xBFClient,Email\r\n\"a,b\",a@example.org\r\n";
		coachbridge_queue_response( 200, $csv, 'text/csv; charset=utf-8' );
		$result = Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( $csv, $result['download']['body'], 'csv body' );
		coachbridge_assert_contains( 'coaching-progress-', $result['download']['filename'] );
		coachbridge_assert_same(
			'http://127.0.0.1:8765/api/v1/admin/progress.csv?off_track=1&program=3&q=Zo%C3%AB&sort=name&status=all',
			coachbridge_last_request()['url'],
			'url'
		);
		coachbridge_assert_same( 'GET', coachbridge_last_request()['args']['method'], 'method' );
	}
);

coachbridge_test(
	'progress export refused',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array( 'coachbridge_form' => 'export-progress' );
		coachbridge_queue_response( 400, '{"error": {"code": "invalid_request", "message": "invalid per_page 500"}}' );
		$result = Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert( isset( $result['redirect'] ), 'a redirect' );
		coachbridge_assert_same( 'invalid per_page 500', coachbridge_admin_notice()['message'], 'notice' );
	}
);

coachbridge_test(
	'new coach user created and registered',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options', 'create_users' ) );
		$_POST = array(
			'coachbridge_form' => 'coach-new-user',
			'user_login'       => 'newcoach',
			'user_email'       => 'new@example.org',
			'display_name'     => 'New <b>Coach</b>',
		);
		coachbridge_queue_response( 201, '{"id": 9, "wp_user_id": 77, "display_name": "New Coach", "email": "new@example.org", "cohorts": 0, "active_clients": 0}' );
		$result = Coachbridge_Admin_Forms::dispatch( 42 );

		$inserted = $GLOBALS['coachbridge_test_inserted_users'];
		coachbridge_assert_same( 1, count( $inserted ), 'users created' );
		coachbridge_assert_same( 'newcoach', $inserted[0]['user_login'], 'login' );
		coachbridge_assert_same( 'New Coach', $inserted[0]['display_name'], 'display name' );
		coachbridge_assert_same( 'subscriber', $inserted[0]['role'], 'role' );
		coachbridge_assert( in_array( 'wp_new_user_notification:77:user', $GLOBALS['coachbridge_test_calls'], true ), 'a password email' );

		coachbridge_assert_same( 'http://127.0.0.1:8765/api/v1/admin/coaches', coachbridge_last_request()['url'], 'url' );
		coachbridge_assert_same( array( 'wp_user_id' => 77 ), coachbridge_admin_sent_body(), 'body' );
		coachbridge_assert_same( 'https://site.example/wp-admin/admin.php?page=coachbridge-coaches&coach=9', $result['redirect'], 'redirect' );
		coachbridge_assert_same( 'success', coachbridge_admin_notice()['type'], 'notice type' );
	}
);

coachbridge_test(
	'new coach user needs create_users',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options' ) );
		$_POST = array(
			'coachbridge_form' => 'coach-new-user',
			'user_login'       => 'newcoach',
			'user_email'       => 'new@example.org',
		);
		Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_inserted_users'], 'users created' );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
		coachbridge_assert_contains( 'not allowed to create WordPress users', coachbridge_admin_notice()['message'] );
	}
);

coachbridge_test(
	'new coach user rejected by WordPress',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options', 'create_users' ) );
		$cases = array(
			array( 'newcoach', 'not an email', 'enter a username and a valid email address' ),
			array( '', 'new@example.org', 'enter a username and a valid email address' ),
			array( 'taken', 'new@example.org', 'Sorry, that username already exists!' ),
		);
		foreach ( $cases as $case ) {
			$_POST = array(
				'coachbridge_form' => 'coach-new-user',
				'user_login'       => $case[0],
				'user_email'       => $case[1],
			);
			Coachbridge_Admin_Forms::dispatch( 42 );
			coachbridge_assert_contains( $case[2], coachbridge_admin_notice()['message'] );
		}
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_inserted_users'], 'users created' );
		coachbridge_assert_same( array(), $GLOBALS['coachbridge_test_http']['requests'], 'requests sent' );
	}
);

coachbridge_test(
	'new coach user not registered',
	function () {
		coachbridge_admin_reset( array( 'read', 'manage_options', 'create_users' ) );
		$_POST = array(
			'coachbridge_form' => 'coach-new-user',
			'user_login'       => 'newcoach',
			'user_email'       => 'new@example.org',
		);
		coachbridge_queue_response( 404, '{"error": {"code": "not_found", "message": "WordPress user 77 not found"}}' );
		Coachbridge_Admin_Forms::dispatch( 42 );
		coachbridge_assert_same( 1, count( $GLOBALS['coachbridge_test_inserted_users'] ), 'users created' );
		coachbridge_assert_contains( 'was created but not registered as a coach: WordPress user 77 not found', coachbridge_admin_notice()['message'] );
	}
);

restore_error_handler();
unlink( $coachbridge_log_file );
printf( "%d passed, %d failed\n", $coachbridge_results['passed'], $coachbridge_results['failed'] );
exit( $coachbridge_results['failed'] > 0 ? 1 : 0 );

<?php
/**
 * Minimal stand-ins for the WordPress functions and classes the plugin calls.
 *
 * Each stub does just enough for the tests in run.php: escaping uses
 * htmlspecialchars() as WordPress does, options and transients live in arrays, and
 * wp_remote_request() returns whatever the test queued in
 * $GLOBALS['coachbridge_test_http'].
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

$GLOBALS['coachbridge_test_options']    = array();
$GLOBALS['coachbridge_test_transients'] = array();
$GLOBALS['coachbridge_test_hooks']      = array();
$GLOBALS['coachbridge_test_calls']      = array();
$GLOBALS['coachbridge_test_user']       = array(
	'id'           => 0,
	'capabilities' => array(),
);
$GLOBALS['coachbridge_test_http']       = array(
	'responses' => array(),
	'requests'  => array(),
);

/**
 * Exception thrown by the wp_die(), wp_safe_redirect() and nonce stubs.
 */
class Coachbridge_Test_Halt extends Exception {
}

/**
 * Error object with codes, messages and data, like WordPress's WP_Error.
 */
class WP_Error {
	/**
	 * Error code.
	 *
	 * @var string
	 */
	public $code;

	/**
	 * Error message.
	 *
	 * @var string
	 */
	public $message;

	/**
	 * Error data.
	 *
	 * @var mixed
	 */
	public $data;

	/**
	 * Creates an error.
	 *
	 * @param string $code    Error code.
	 * @param string $message Error message.
	 * @param mixed  $data    Error data.
	 */
	public function __construct( $code = '', $message = '', $data = '' ) {
		$this->code    = $code;
		$this->message = $message;
		$this->data    = $data;
	}

	/**
	 * Returns the error code.
	 *
	 * @return string
	 */
	public function get_error_code() {
		return $this->code;
	}

	/**
	 * Returns the error message.
	 *
	 * @return string
	 */
	public function get_error_message() {
		return $this->message;
	}

	/**
	 * Returns the error data.
	 *
	 * @return mixed
	 */
	public function get_error_data() {
		return $this->data;
	}
}

/**
 * REST response with data and a status.
 */
class WP_REST_Response {
	/**
	 * Response data.
	 *
	 * @var mixed
	 */
	public $data;

	/**
	 * HTTP status.
	 *
	 * @var int
	 */
	public $status;

	/**
	 * Creates a response.
	 *
	 * @param mixed $data   Response data.
	 * @param int   $status HTTP status.
	 */
	public function __construct( $data = null, $status = 200 ) {
		$this->data   = $data;
		$this->status = $status;
	}
}

/**
 * REST request with JSON parameters and headers.
 */
class WP_REST_Request {
	/**
	 * Parameters.
	 *
	 * @var array
	 */
	private $params;

	/**
	 * Headers, keyed by lowercase name.
	 *
	 * @var array
	 */
	private $headers;

	/**
	 * Creates a request.
	 *
	 * @param array $params  Parameters.
	 * @param array $headers Headers.
	 */
	public function __construct( $params = array(), $headers = array() ) {
		$this->params  = $params;
		$this->headers = array_change_key_case( $headers, CASE_LOWER );
	}

	/**
	 * Returns a parameter or null.
	 *
	 * @param string $name Parameter name.
	 * @return mixed
	 */
	public function get_param( $name ) {
		return isset( $this->params[ $name ] ) ? $this->params[ $name ] : null;
	}

	/**
	 * Returns a header or null. WordPress accepts - or _ in the name.
	 *
	 * @param string $name Header name.
	 * @return string|null
	 */
	public function get_header( $name ) {
		$key = strtolower( str_replace( '_', '-', $name ) );
		return isset( $this->headers[ $key ] ) ? $this->headers[ $key ] : null;
	}
}

/**
 * Records a call for tests that check the order of checks.
 *
 * @param string $name Function name.
 */
function coachbridge_test_record( $name ) {
	$GLOBALS['coachbridge_test_calls'][] = $name;
}

function is_wp_error( $thing ) {
	return $thing instanceof WP_Error;
}

function __( $text, $domain = 'default' ) {
	return $text;
}

function esc_html( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

function esc_attr( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

function esc_html__( $text, $domain = 'default' ) {
	return esc_html( $text );
}

function esc_html_e( $text, $domain = 'default' ) {
	echo esc_html( $text );
}

function esc_url_raw( $url, $protocols = null ) {
	$scheme = strtolower( (string) wp_parse_url( $url, PHP_URL_SCHEME ) );
	if ( ! in_array( $scheme, null === $protocols ? array( 'http', 'https' ) : $protocols, true ) ) {
		return '';
	}
	return str_replace( array( ' ', '"', "'", '<', '>' ), array( '%20', '%22', '%27', '%3C', '%3E' ), $url );
}

function esc_url( $url ) {
	return esc_attr( esc_url_raw( $url ) );
}

function wp_parse_url( $url, $component = -1 ) {
	return parse_url( $url, $component ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url
}

function untrailingslashit( $value ) {
	return rtrim( $value, '/\\' );
}

function wp_unslash( $value ) {
	return is_string( $value ) ? stripslashes( $value ) : $value;
}

function sanitize_key( $key ) {
	return preg_replace( '/[^a-z0-9_\-]/', '', strtolower( (string) $key ) );
}

function sanitize_text_field( $text ) {
	$text = preg_replace( '/<[^>]*>/', '', (string) $text );
	$text = preg_replace( '/[\r\n\t ]+/', ' ', $text );
	return trim( $text );
}

function absint( $value ) {
	return abs( (int) $value );
}

function wp_strip_all_tags( $text ) {
	return trim( strip_tags( (string) $text ) ); // phpcs:ignore WordPress.WP.AlternativeFunctions.strip_tags_strip_tags
}

function wp_json_encode( $data ) {
	return json_encode( $data ); // phpcs:ignore WordPress.WP.AlternativeFunctions.json_encode_json_encode
}

function apply_filters( $hook, $value ) {
	return $value;
}

function add_action( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
	$GLOBALS['coachbridge_test_hooks'][ $hook ][] = array( $callback, $priority, $accepted_args );
}

function plugin_dir_path( $file ) {
	return rtrim( dirname( $file ), '/' ) . '/';
}

function plugins_url( $path, $file ) {
	return 'https://site.example/wp-content/plugins/coachbridge/' . $path;
}

function admin_url( $path = '' ) {
	return 'https://site.example/wp-admin/' . $path;
}

function rest_url( $path = '' ) {
	return 'https://site.example/wp-json/' . $path;
}

function get_permalink() {
	return 'https://site.example/account/';
}

function home_url( $path = '' ) {
	return 'https://site.example' . $path;
}

function wp_get_referer() {
	return false;
}

function wp_check_invalid_utf8( $text, $strip = false ) {
	$text = (string) $text;
	if ( preg_match( '//u', $text ) ) {
		return $text;
	}
	if ( ! $strip ) {
		return '';
	}
	// ENT_IGNORE drops invalid sequences, as WordPress does with $strip.
	return htmlspecialchars_decode( htmlspecialchars( $text, ENT_QUOTES | ENT_IGNORE, 'UTF-8' ), ENT_QUOTES );
}

function add_query_arg( $key, $value = null, $url = null ) {
	if ( is_array( $key ) ) {
		$args = $key;
		$url  = $value;
	} else {
		$args = array( $key => $value );
	}
	$separator = false === strpos( $url, '?' ) ? '?' : '&';
	return $url . $separator . http_build_query( $args );
}

function get_option( $name, $default_value = false ) {
	return array_key_exists( $name, $GLOBALS['coachbridge_test_options'] ) ? $GLOBALS['coachbridge_test_options'][ $name ] : $default_value;
}

function update_option( $name, $value, $autoload = null ) {
	$GLOBALS['coachbridge_test_options'][ $name ] = $value;
	return true;
}

function get_transient( $name ) {
	return isset( $GLOBALS['coachbridge_test_transients'][ $name ] ) ? $GLOBALS['coachbridge_test_transients'][ $name ] : false;
}

function set_transient( $name, $value, $expiration = 0 ) {
	$GLOBALS['coachbridge_test_transients'][ $name ] = $value;
	return true;
}

function current_user_can( $capability ) {
	coachbridge_test_record( 'current_user_can' );
	return in_array( $capability, $GLOBALS['coachbridge_test_user']['capabilities'], true );
}

function is_user_logged_in() {
	return $GLOBALS['coachbridge_test_user']['id'] > 0;
}

function get_current_user_id() {
	return $GLOBALS['coachbridge_test_user']['id'];
}

function check_admin_referer( $action ) {
	coachbridge_test_record( 'check_admin_referer' );
	$nonce = isset( $_POST['_wpnonce'] ) ? $_POST['_wpnonce'] : ''; // phpcs:ignore
	if ( 'valid-nonce-' . $action !== $nonce ) {
		throw new Coachbridge_Test_Halt( 'invalid nonce' );
	}
	return 1;
}

function wp_verify_nonce( $nonce, $action ) {
	return 'valid-nonce-' . $action === $nonce ? 1 : false;
}

function wp_create_nonce( $action ) {
	return 'valid-nonce-' . $action;
}

function wp_nonce_field( $action ) {
	echo '<input type="hidden" name="_wpnonce" value="' . esc_attr( wp_create_nonce( $action ) ) . '">';
}

function submit_button( $text ) {
	echo '<input type="submit" value="' . esc_attr( $text ) . '">';
}

function wp_die( $message = '', $title = '', $args = array() ) {
	throw new Coachbridge_Test_Halt( 'wp_die: ' . $message );
}

function wp_safe_redirect( $location ) {
	throw new Coachbridge_Test_Halt( 'redirect: ' . $location );
}

function nocache_headers() {
	coachbridge_test_record( 'nocache_headers' );
}

function wp_enqueue_script( $handle ) {
	coachbridge_test_record( 'wp_enqueue_script:' . $handle );
}

function wp_enqueue_style( $handle, $src = '', $deps = array(), $ver = false ) {
	coachbridge_test_record( 'wp_enqueue_style:' . $handle );
}

function wp_localize_script( $handle, $name, $data ) {
	coachbridge_test_record( 'wp_localize_script:' . $name );
}

function wp_kses_allowed_html( $context ) {
	return array(
		'a'     => array( 'href' => true ),
		'p'     => array(),
		'div'   => array( 'class' => true ),
		'h2'    => array(),
		'ul'    => array(),
		'li'    => array(),
		'span'  => array( 'class' => true ),
		'table' => array(),
	);
}

/**
 * Removes tags and attributes outside the allowlist, a rough model of wp_kses().
 *
 * @param string $html    HTML.
 * @param array  $allowed Tag => attribute => true.
 * @return string
 */
function wp_kses( $html, $allowed ) {
	$html = preg_replace( '#<(script|style)\b[^>]*>.*?</\1>#is', '', $html );
	return preg_replace_callback(
		'#<(/?)([a-zA-Z0-9]+)([^>]*)>#',
		function ( $match ) use ( $allowed ) {
			$tag = strtolower( $match[2] );
			if ( ! isset( $allowed[ $tag ] ) ) {
				return '';
			}
			preg_match_all( '#([a-zA-Z0-9_-]+)(="[^"]*")?#', $match[3], $attributes, PREG_SET_ORDER );
			$kept = '';
			foreach ( $attributes as $attribute ) {
				$name     = strtolower( $attribute[1] );
				$wildcard = 0 === strpos( $name, 'data-' ) && isset( $allowed[ $tag ]['data-*'] );
				if ( isset( $allowed[ $tag ][ $name ] ) || $wildcard ) {
					$kept .= ' ' . $attribute[0];
				}
			}
			return '<' . $match[1] . $tag . $kept . '>';
		},
		$html
	);
}

function wp_remote_request( $url, $args ) {
	$GLOBALS['coachbridge_test_http']['requests'][] = array(
		'url'  => $url,
		'args' => $args,
	);
	if ( empty( $GLOBALS['coachbridge_test_http']['responses'] ) ) {
		return new WP_Error( 'http_request_failed', 'cURL error 7: Failed to connect to 127.0.0.1 port 8765' );
	}
	return array_shift( $GLOBALS['coachbridge_test_http']['responses'] );
}

function wp_remote_retrieve_response_code( $response ) {
	return $response['response']['code'];
}

function wp_remote_retrieve_body( $response ) {
	return $response['body'];
}

function wp_remote_retrieve_header( $response, $name ) {
	$headers = array_change_key_case( $response['headers'], CASE_LOWER );
	return isset( $headers[ strtolower( $name ) ] ) ? $headers[ strtolower( $name ) ] : '';
}

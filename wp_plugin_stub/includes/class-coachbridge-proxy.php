<?php
/**
 * The REST route that forwards a member's actions to bridge.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Registers POST /wp-json/coachbridge/v1/proxy and the script that calls it.
 *
 * The browser sends {"method": ..., "path": ..., "body": {...}} with the
 * wp_rest nonce. The route checks the login and the nonce, checks the method
 * and path against an allowlist, signs the request for the current user and
 * returns bridge's JSON with bridge's status. bridge decides whether the user
 * may act on the enrollment.
 */
final class Coachbridge_Proxy {

	const REST_NAMESPACE = 'coachbridge/v1';
	const REST_ROUTE     = '/proxy';
	const SCRIPT_HANDLE  = 'coachbridge';

	// Maximum size of the JSON body forwarded to bridge, in bytes, the same as
	// bridge's limit. wp_json_encode() writes non-ASCII characters as \u escapes
	// of 6 or 12 bytes, so a message of 5,000 characters can take 60 KB.
	const MAX_BODY_BYTES = 65536;

	/**
	 * Returns the requests the proxy forwards, as pairs of method and path pattern.
	 *
	 * These are all the client writes of bridge's API: ticks and messages.
	 * The Coaching menu's forms post to admin-post.php instead, see
	 * Coachbridge_Admin_Forms.
	 *
	 * @return array<int, array{0: string, 1: string}>
	 */
	public static function allowed_routes() {
		$id            = '[1-9][0-9]{0,18}';
		$milestone     = '#^/api/v1/enrollments/' . $id . '/milestones/' . $id . '/tick$#D';
		$habit         = '#^/api/v1/enrollments/' . $id . '/habits/' . $id . '/ticks/[0-9]{4}-[0-9]{2}-[0-9]{2}$#D';
		$conversations = '#^/api/v1/conversations$#D';
		$messages      = '#^/api/v1/conversations/' . $id . '/messages$#D';
		return array(
			array( 'PUT', $milestone ),
			array( 'DELETE', $milestone ),
			array( 'PUT', $habit ),
			array( 'DELETE', $habit ),
			array( 'POST', $conversations ),
			array( 'POST', $messages ),
		);
	}

	/**
	 * Registers the REST route.
	 */
	public static function register_hooks() {
		add_action( 'rest_api_init', array( __CLASS__, 'register_route' ) );
	}

	/**
	 * Adds the route to the REST server.
	 */
	public static function register_route() {
		register_rest_route(
			self::REST_NAMESPACE,
			self::REST_ROUTE,
			array(
				'methods'             => 'POST',
				'callback'            => array( __CLASS__, 'handle' ),
				'permission_callback' => array( __CLASS__, 'check_permission' ),
				'args'                => array(
					'method' => array(
						'type'     => 'string',
						'required' => true,
					),
					'path'   => array(
						'type'     => 'string',
						'required' => true,
					),
				),
			)
		);
	}

	/**
	 * Allows logged-in users who sent a valid wp_rest nonce.
	 *
	 * WordPress already treats a cookie request without a valid nonce as logged
	 * out. The nonce is checked here as well, so the route stays closed even if
	 * another plugin changes that behaviour.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return true|WP_Error
	 */
	public static function check_permission( $request ) {
		if ( ! is_user_logged_in() ) {
			return new WP_Error( 'coachbridge_not_logged_in', __( 'Please log in again.', 'coachbridge' ), array( 'status' => 401 ) );
		}
		$nonce = (string) $request->get_header( 'X-WP-Nonce' );
		if ( ! wp_verify_nonce( $nonce, 'wp_rest' ) ) {
			return new WP_Error( 'coachbridge_invalid_nonce', __( 'This page has expired. Please reload it and try again.', 'coachbridge' ), array( 'status' => 403 ) );
		}
		return true;
	}

	/**
	 * Forwards an allowed request to bridge and returns bridge's JSON and status.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function handle( $request ) {
		// The allowlist patterns admit digits, letters, / and - only, so the raw
		// values are checked as they are and sanitized only for the error message.
		$method = strtoupper( (string) $request->get_param( 'method' ) );
		$path   = (string) $request->get_param( 'path' );
		if ( ! self::is_allowed( $method, $path ) ) {
			return new WP_Error(
				'coachbridge_not_allowed',
				sprintf( 'The proxy does not forward %1$s %2$s.', sanitize_text_field( substr( $method, 0, 10 ) ), sanitize_text_field( substr( $path, 0, 200 ) ) ),
				array( 'status' => 400 )
			);
		}

		$body = self::encode_body( $request->get_param( 'body' ) );
		if ( strlen( $body ) > self::MAX_BODY_BYTES ) {
			return new WP_Error(
				'coachbridge_body_too_large',
				sprintf( 'The request body is %1$d bytes; the maximum is %2$d.', strlen( $body ), self::MAX_BODY_BYTES ),
				array( 'status' => 413 )
			);
		}

		$client   = Coachbridge_Client::from_settings();
		$response = is_wp_error( $client ) ? $client : $client->request( $method, $path, array(), $body, get_current_user_id() );
		if ( is_wp_error( $response ) ) {
			Coachbridge_Pages::log_error( $response );
			return self::unavailable();
		}
		if ( $response['status'] >= 500 ) {
			Coachbridge_Pages::log_error(
				new WP_Error( 'coachbridge_server_error', sprintf( 'bridge returned HTTP %1$d for %2$s %3$s: %4$s', $response['status'], $method, $path, Coachbridge_Client::error_message( $response['body'] ) ) )
			);
		}

		if ( '' === trim( $response['body'] ) ) {
			return new WP_REST_Response( null, $response['status'] );
		}
		$data = json_decode( $response['body'], true );
		if ( null === $data && 'null' !== trim( $response['body'] ) ) {
			Coachbridge_Pages::log_error(
				new WP_Error( 'coachbridge_invalid_json', sprintf( 'bridge returned a body that is not JSON for %1$s %2$s (HTTP %3$d)', $method, $path, $response['status'] ) )
			);
			return self::unavailable();
		}
		return new WP_REST_Response( $data, $response['status'] );
	}

	/**
	 * Returns whether the proxy forwards this method and path.
	 *
	 * @param string $method HTTP method, upper case.
	 * @param string $path   Path under /api/v1/.
	 * @return bool
	 */
	public static function is_allowed( $method, $path ) {
		foreach ( self::allowed_routes() as $route ) {
			if ( $route[0] === $method && preg_match( $route[1], $path ) ) {
				return true;
			}
		}
		return false;
	}

	/**
	 * Encodes the browser's body for bridge. Null or an empty object sends no body.
	 *
	 * @param mixed $body Decoded JSON from the browser.
	 * @return string
	 */
	public static function encode_body( $body ) {
		if ( null === $body || array() === $body ) {
			return '';
		}
		$json = wp_json_encode( $body );
		return false === $json ? '' : $json;
	}

	/**
	 * Loads the script that sends ticks and messages through the proxy.
	 */
	public static function enqueue_script() {
		wp_enqueue_script(
			self::SCRIPT_HANDLE,
			plugins_url( 'assets/coachbridge.js', COACHBRIDGE_PLUGIN_FILE ),
			array(),
			COACHBRIDGE_VERSION,
			true
		);
		wp_localize_script(
			self::SCRIPT_HANDLE,
			'coachbridgeSettings',
			array(
				'proxyUrl'      => esc_url_raw( rest_url( self::REST_NAMESPACE . self::REST_ROUTE ) ),
				'nonce'         => wp_create_nonce( 'wp_rest' ),
				'savedMessage'  => __( 'Saved.', 'coachbridge' ),
				'failedMessage' => __( 'Your change was not saved. Please try again.', 'coachbridge' ),
			)
		);
	}

	/**
	 * Builds the 503 response used when bridge cannot be reached.
	 *
	 * @return WP_Error
	 */
	private static function unavailable() {
		return new WP_Error( 'coachbridge_unavailable', Coachbridge_Pages::unavailable_message(), array( 'status' => 503 ) );
	}
}

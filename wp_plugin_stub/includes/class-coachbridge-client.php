<?php
/**
 * The HTTP client that sends signed requests to bridge.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Signs requests with Coachbridge_Signer and sends them with wp_remote_request().
 *
 * wp_remote_request() is used instead of wp_safe_remote_request() because the
 * safe variant rejects loopback and private addresses, where bridge usually
 * runs. The bridge URL can only be set by an administrator.
 */
class Coachbridge_Client {

	// Seconds to wait for bridge before the page shows the unavailable message.
	const TIMEOUT = 5;

	// Paths bridge serves to the plugin. A segment may not start with a dot, so
	// "." and ".." cannot walk out of these prefixes.
	const PATH_PATTERN = '#^/(api/v1|pages)(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*$#D';

	/**
	 * Bridge URL without a trailing slash.
	 *
	 * @var string
	 */
	private $base_url;

	/**
	 * Shared secret.
	 *
	 * @var string
	 */
	private $secret;

	/**
	 * Creates a client for one bridge URL and secret.
	 *
	 * @param string $base_url Bridge URL, such as http://127.0.0.1:8765.
	 * @param string $secret   Shared secret.
	 */
	public function __construct( $base_url, $secret ) {
		$this->base_url = untrailingslashit( (string) $base_url );
		$this->secret   = (string) $secret;
	}

	/**
	 * Creates a client from the saved settings, or returns a WP_Error when they are incomplete.
	 *
	 * @return Coachbridge_Client|WP_Error
	 */
	public static function from_settings() {
		$url    = Coachbridge_Settings::bridge_url();
		$secret = Coachbridge_Settings::secret();
		if ( '' === $url || '' === $secret ) {
			return new WP_Error(
				'coachbridge_not_configured',
				__( 'Coachbridge is not configured: set the bridge URL and shared secret under Settings → Coachbridge.', 'coachbridge' )
			);
		}
		return new self( $url, $secret );
	}

	/**
	 * Sends a signed request and returns the response, or a WP_Error when none arrived.
	 *
	 * Any HTTP status counts as a response. Redirects are not followed, because
	 * the signature covers one path only.
	 *
	 * @param string $method  HTTP method.
	 * @param string $path    Path under /api/v1/ or /pages/.
	 * @param array  $query   Query parameters: name => string, or name => list of strings.
	 * @param string $body    Request body, '' for none.
	 * @param int    $user_id Acting WordPress user id, 0 for none.
	 * @return array{status: int, body: string, content_type: string}|WP_Error
	 */
	public function request( $method, $path, $query = array(), $body = '', $user_id = 0 ) {
		$method = strtoupper( (string) $method );
		if ( ! preg_match( self::PATH_PATTERN, (string) $path ) ) {
			return new WP_Error( 'coachbridge_invalid_path', sprintf( 'Invalid bridge path %s: only paths under /api/v1/ and /pages/ can be requested.', $path ) );
		}

		$body    = (string) $body;
		$headers = Coachbridge_Signer::sign( $this->secret, $method, $path, $query, $body, absint( $user_id ) );

		$headers['Accept'] = 'application/json, text/html';
		if ( '' !== $body ) {
			$headers['Content-Type'] = 'application/json';
		}

		$url          = $this->base_url . $path;
		$query_string = Coachbridge_Signer::build_query( $query );
		if ( '' !== $query_string ) {
			$url .= '?' . $query_string;
		}

		$response = wp_remote_request(
			$url,
			array(
				'method'      => $method,
				'timeout'     => self::TIMEOUT,
				'redirection' => 0,
				'headers'     => $headers,
				'body'        => '' === $body ? null : $body,
				'user-agent'  => 'Coachbridge-WordPress/' . COACHBRIDGE_VERSION,
			)
		);
		if ( is_wp_error( $response ) ) {
			return new WP_Error(
				'coachbridge_unreachable',
				sprintf( 'Could not reach bridge at %s: %s', $this->base_url, $response->get_error_message() )
			);
		}

		return array(
			'status'       => (int) wp_remote_retrieve_response_code( $response ),
			'body'         => (string) wp_remote_retrieve_body( $response ),
			'content_type' => (string) wp_remote_retrieve_header( $response, 'content-type' ),
		);
	}

	/**
	 * Fetches a bridge page as HTML, or returns a WP_Error for any status but 200.
	 *
	 * The error code is coachbridge_not_found for 404 and coachbridge_unavailable
	 * for everything else, with bridge's error message and the status in the data.
	 *
	 * @param string $path    Path under /pages/.
	 * @param array  $query   Query parameters.
	 * @param int    $user_id Acting WordPress user id.
	 * @return string|WP_Error
	 */
	public function page( $path, $query, $user_id ) {
		$response = $this->request( 'GET', $path, $query, '', $user_id );
		if ( is_wp_error( $response ) ) {
			return new WP_Error( 'coachbridge_unavailable', $response->get_error_message(), array( 'status' => 0 ) );
		}
		if ( 200 === $response['status'] ) {
			return $response['body'];
		}

		$code = 404 === $response['status'] ? 'coachbridge_not_found' : 'coachbridge_unavailable';
		return new WP_Error(
			$code,
			sprintf( 'bridge returned HTTP %1$d for GET %2$s: %3$s', $response['status'], $path, self::error_message( $response['body'] ) ),
			array( 'status' => $response['status'] )
		);
	}

	/**
	 * Extracts error.message from bridge's JSON error body, or returns a short excerpt.
	 *
	 * @param string $body Response body.
	 * @return string
	 */
	public static function error_message( $body ) {
		$decoded = json_decode( (string) $body, true );
		if ( is_array( $decoded ) && isset( $decoded['error']['message'] ) && is_string( $decoded['error']['message'] ) ) {
			return $decoded['error']['message'];
		}
		return substr( wp_strip_all_tags( (string) $body ), 0, 200 );
	}
}

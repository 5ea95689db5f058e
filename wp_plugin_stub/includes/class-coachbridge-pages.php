<?php
/**
 * Embedding of bridge's HTML pages in WordPress screens.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Fetches a bridge page for the current user and returns HTML that is safe to echo.
 *
 * bridge escapes its own output. The plugin still filters every page with
 * wp_kses() as a second line of defence, because the page lands inside
 * WordPress screens where the user's cookies and nonces live. The allowlist is
 * WordPress's post tags plus forms and their controls, so checkboxes and
 * message forms survive. Scripts never do: the plugin's own
 * assets/coachbridge.js handles them.
 */
final class Coachbridge_Pages {

	// Seconds between two log lines for the same error code, so that a bridge
	// outage writes one line per code every five minutes, not one per page view.
	const LOG_INTERVAL = 300;

	/**
	 * Returns the message shown when bridge cannot be reached or fails.
	 *
	 * @return string
	 */
	public static function unavailable_message() {
		return __( 'Coaching is unavailable right now. Please try again in a few minutes.', 'coachbridge' );
	}

	/**
	 * Fetches a bridge page and returns it filtered, or a notice when that fails.
	 *
	 * @param string $path              Path under /pages/.
	 * @param array  $query             Query parameters, already sanitized.
	 * @param int    $user_id           Acting WordPress user id.
	 * @param string $not_found_message Message shown when bridge returns 404.
	 * @return string HTML that is safe to echo.
	 */
	public static function render( $path, $query, $user_id, $not_found_message ) {
		$client = Coachbridge_Client::from_settings();
		$html   = is_wp_error( $client ) ? $client : $client->page( $path, $query, $user_id );
		if ( ! is_wp_error( $html ) ) {
			return wp_kses( $html, self::allowed_html() );
		}

		if ( 'coachbridge_not_found' === $html->get_error_code() ) {
			return self::notice( $not_found_message );
		}
		self::log_error( $html );
		return self::notice( self::unavailable_message() );
	}

	/**
	 * Fetches a Coaching menu page and returns it filtered, or a notice when that fails.
	 *
	 * Unlike render(), bridge's own message is shown when it refuses the page
	 * with 400 (an invalid filter), 403 (a coach opening an administrator's
	 * page) or 409, because that message names what to change.
	 *
	 * @param string $path              Path under /pages/.
	 * @param array  $query             Query parameters, already sanitized.
	 * @param int    $user_id           Acting WordPress user id.
	 * @param string $not_found_message Message shown when bridge returns 404.
	 * @return string HTML that is safe to echo.
	 */
	public static function render_admin( $path, $query, $user_id, $not_found_message ) {
		$client   = Coachbridge_Client::from_settings();
		$response = is_wp_error( $client ) ? $client : $client->request( 'GET', $path, $query, '', $user_id );
		if ( is_wp_error( $response ) ) {
			self::log_error( $response );
			return self::notice( self::unavailable_message() );
		}

		$status = $response['status'];
		if ( 200 === $status ) {
			return wp_kses( $response['body'], self::allowed_html() );
		}
		if ( 404 === $status ) {
			return self::notice( $not_found_message );
		}
		if ( in_array( $status, array( 400, 403, 409 ), true ) ) {
			return self::notice( Coachbridge_Client::error_message( $response['body'] ) );
		}
		self::log_error(
			new WP_Error( 'coachbridge_unavailable', sprintf( 'bridge returned HTTP %1$d for GET %2$s: %3$s', $status, $path, Coachbridge_Client::error_message( $response['body'] ) ) )
		);
		return self::notice( self::unavailable_message() );
	}

	/**
	 * Wraps a message in the notice markup used in the tab and admin pages.
	 *
	 * @param string $message Plain text.
	 * @return string
	 */
	public static function notice( $message ) {
		return '<div class="coachbridge-notice" role="alert"><p>' . esc_html( $message ) . '</p></div>';
	}

	/**
	 * Returns the tags and attributes allowed in bridge's pages.
	 *
	 * @return array
	 */
	public static function allowed_html() {
		// wp_kses() accepts a wildcard for data-* only, so aria attributes are listed.
		$common = array(
			'id'               => true,
			'class'            => true,
			'title'            => true,
			'hidden'           => true,
			'role'             => true,
			'data-*'           => true,
			'aria-label'       => true,
			'aria-labelledby'  => true,
			'aria-describedby' => true,
			'aria-hidden'      => true,
			'aria-live'        => true,
			'aria-checked'     => true,
			'aria-current'     => true,
		);
		$field  = $common + array(
			'name'        => true,
			'value'       => true,
			'disabled'    => true,
			'required'    => true,
			'readonly'    => true,
			'placeholder' => true,
			'maxlength'   => true,
			'minlength'   => true,
			'form'        => true,
		);

		$tags             = wp_kses_allowed_html( 'post' );
		$tags['form']     = $common + array(
			'action'     => true,
			'method'     => true,
			'novalidate' => true,
		);
		$tags['input']    = $field + array(
			'type'         => true,
			'checked'      => true,
			'min'          => true,
			'max'          => true,
			'step'         => true,
			'autocomplete' => true,
		);
		$tags['textarea'] = $field + array(
			'rows' => true,
			'cols' => true,
		);
		$tags['select']   = $field + array( 'multiple' => true );
		$tags['option']   = $common + array(
			'value'    => true,
			'selected' => true,
			'disabled' => true,
		);
		$tags['optgroup'] = $common + array(
			'label'    => true,
			'disabled' => true,
		);
		$tags['button']   = $field + array( 'type' => true );
		$tags['label']    = $common + array( 'for' => true );
		$tags['fieldset'] = $common + array( 'disabled' => true );
		$tags['legend']   = $common;
		$tags['progress'] = $common + array(
			'value' => true,
			'max'   => true,
		);
		$tags['time']     = $common + array( 'datetime' => true );

		/**
		 * Filters the tags and attributes kept in bridge's pages.
		 *
		 * @param array $tags Tag name => allowed attributes, as wp_kses() expects.
		 */
		return apply_filters( 'coachbridge_allowed_html', $tags );
	}

	/**
	 * Logs a failed bridge request, at most once per error code every LOG_INTERVAL seconds.
	 *
	 * @param WP_Error $error The failure.
	 */
	public static function log_error( $error ) {
		$key = 'coachbridge_logged_' . $error->get_error_code();
		if ( false !== get_transient( $key ) ) {
			return;
		}
		set_transient( $key, 1, self::LOG_INTERVAL );
		error_log( sprintf( 'coachbridge: %s (%s); repeats are not logged for %d seconds', $error->get_error_message(), $error->get_error_code(), self::LOG_INTERVAL ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
	}
}

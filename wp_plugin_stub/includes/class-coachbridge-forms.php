<?php
/**
 * The handler of the plain forms in the Coaching tab.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Receives the tab's forms at admin-post.php and forwards them to bridge.
 *
 * bridge renders each form with the action URL and nonce that the account tab
 * passes in the signed page query, so ticks and messages work without
 * JavaScript. The handler checks the nonce, then that the user is logged in,
 * sends the same signed API requests as the REST proxy, and redirects back to
 * the tab with a notice. bridge decides whether the user may act on each
 * object.
 */
final class Coachbridge_Forms {

	// The admin-post.php action, also the nonce action.
	const ACTION = 'coachbridge_client_action';

	// Maximum number of tick changes one form submission forwards. A 120-day
	// window of four habits and the milestones fits.
	const MAX_TICK_CHANGES = 600;

	const VIEWS = array( 'enrollments', 'program', 'messages' );

	/**
	 * Registers the handler for logged-in users only.
	 */
	public static function register_hooks() {
		add_action( 'admin_post_' . self::ACTION, array( __CLASS__, 'handle' ) );
	}

	/**
	 * Returns the URL the tab's forms post to.
	 *
	 * @return string
	 */
	public static function action_url() {
		return add_query_arg( 'action', self::ACTION, admin_url( 'admin-post.php' ) );
	}

	/**
	 * Returns a new nonce for the tab's forms.
	 *
	 * @return string
	 */
	public static function nonce() {
		return wp_create_nonce( self::ACTION );
	}

	/**
	 * Handles a form: nonce, then login and capability, then the operation, then a redirect.
	 */
	public static function handle() {
		check_admin_referer( self::ACTION );
		if ( ! is_user_logged_in() || ! current_user_can( 'read' ) ) {
			wp_die( esc_html__( 'Please log in to change your coaching.', 'coachbridge' ), '', array( 'response' => 403 ) );
		}

		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked by check_admin_referer() above.
		$operation = isset( $_POST['coachbridge_do'] ) ? sanitize_key( wp_unslash( $_POST['coachbridge_do'] ) ) : '';
		$return    = isset( $_POST['coachbridge_return'] ) ? sanitize_text_field( wp_unslash( $_POST['coachbridge_return'] ) ) : '';
		// phpcs:enable
		$query = self::return_query( $return );

		$client = Coachbridge_Client::from_settings();
		if ( is_wp_error( $client ) ) {
			Coachbridge_Pages::log_error( $client );
			$notice = 'unavailable';
		} else {
			$notice = self::run( $client, $operation, get_current_user_id(), $query );
		}

		$query['coachbridge_notice'] = $notice;
		wp_safe_redirect( add_query_arg( $query, Coachbridge_Account::account_url() ) );
		exit;
	}

	/**
	 * Runs one form operation and returns the notice code for the redirect.
	 *
	 * @param Coachbridge_Client $client  Client for bridge.
	 * @param string             $operation save_ticks, send_message or start_conversation.
	 * @param int                $user_id Acting WordPress user id.
	 * @param array              $query   Query of the redirect; start_conversation sets the conversation.
	 * @return string Notice code.
	 */
	public static function run( $client, $operation, $user_id, &$query ) {
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- handle() checked the nonce.
		if ( 'save_ticks' === $operation ) {
			$enrollment = isset( $_POST['enrollment'] ) ? absint( wp_unslash( $_POST['enrollment'] ) ) : 0;
			$requests   = self::tick_requests( $enrollment, $_POST );
			return self::send_all( $client, $requests, $user_id, 'saved' );
		}
		if ( 'send_message' === $operation ) {
			$conversation = isset( $_POST['conversation'] ) ? absint( wp_unslash( $_POST['conversation'] ) ) : 0;
			$body         = self::message_body( $_POST );
			if ( $conversation < 1 || '' === $body ) {
				return 'invalid';
			}
			$request = array( 'POST', '/api/v1/conversations/' . $conversation . '/messages', array( 'body' => $body ) );
			return self::send_all( $client, array( $request ), $user_id, 'sent' );
		}
		if ( 'start_conversation' === $operation ) {
			$partner = isset( $_POST['partner'] ) ? absint( wp_unslash( $_POST['partner'] ) ) : 0;
			return self::start_conversation( $client, $partner, self::message_body( $_POST ), $user_id, $query );
		}
		// phpcs:enable
		return 'invalid';
	}

	/**
	 * Lists the tick requests of a form: PUT for each new tick, DELETE for each removed one.
	 *
	 * The form sends the checked boxes (milestone_done[], habit_done[]) and,
	 * hidden, the boxes that were checked when the page was drawn
	 * (milestone_was[], habit_was[]), so only the changes are forwarded. The
	 * requests are idempotent, so a page that went stale does no harm.
	 *
	 * @param int   $enrollment Enrollment id.
	 * @param array $fields     The posted fields, still slashed.
	 * @return array<int, array{0: string, 1: string, 2: null}>|null Null when the form is invalid.
	 */
	public static function tick_requests( $enrollment, $fields ) {
		if ( $enrollment < 1 ) {
			return null;
		}
		$prefix   = '/api/v1/enrollments/' . $enrollment;
		$requests = array();

		$milestones_done = self::id_list( $fields, 'milestone_done' );
		$milestones_was  = self::id_list( $fields, 'milestone_was' );
		foreach ( array_diff( $milestones_done, $milestones_was ) as $milestone ) {
			$requests[] = array( 'PUT', $prefix . '/milestones/' . $milestone . '/tick', null );
		}
		foreach ( array_diff( $milestones_was, $milestones_done ) as $milestone ) {
			$requests[] = array( 'DELETE', $prefix . '/milestones/' . $milestone . '/tick', null );
		}

		$habits_done = self::habit_date_list( $fields, 'habit_done' );
		$habits_was  = self::habit_date_list( $fields, 'habit_was' );
		foreach ( array_diff( $habits_done, $habits_was ) as $habit_date ) {
			$requests[] = array( 'PUT', $prefix . '/habits/' . str_replace( '/', '/ticks/', $habit_date ), null );
		}
		foreach ( array_diff( $habits_was, $habits_done ) as $habit_date ) {
			$requests[] = array( 'DELETE', $prefix . '/habits/' . str_replace( '/', '/ticks/', $habit_date ), null );
		}

		if ( count( $requests ) > self::MAX_TICK_CHANGES ) {
			return null;
		}
		return $requests;
	}

	/**
	 * Reads a posted list of ids, dropping anything that is not a positive integer.
	 *
	 * @param array  $fields The posted fields, still slashed.
	 * @param string $name   Field name without the [] suffix.
	 * @return array<int, string>
	 */
	private static function id_list( $fields, $name ) {
		$ids = array();
		foreach ( self::raw_list( $fields, $name ) as $value ) {
			$id = absint( $value );
			if ( $id > 0 ) {
				$ids[] = (string) $id;
			}
		}
		return array_values( array_unique( $ids ) );
	}

	/**
	 * Reads a posted list of habit dates written habit_id/YYYY-MM-DD, dropping malformed ones.
	 *
	 * @param array  $fields The posted fields, still slashed.
	 * @param string $name   Field name without the [] suffix.
	 * @return array<int, string>
	 */
	private static function habit_date_list( $fields, $name ) {
		$values = array();
		foreach ( self::raw_list( $fields, $name ) as $value ) {
			if ( preg_match( '#^[1-9][0-9]{0,18}/[0-9]{4}-[0-9]{2}-[0-9]{2}$#D', $value ) ) {
				$values[] = $value;
			}
		}
		return array_values( array_unique( $values ) );
	}

	/**
	 * Returns a posted list as unslashed strings; anything that is not a list of strings becomes empty.
	 *
	 * @param array  $fields The posted fields, still slashed.
	 * @param string $name   Field name.
	 * @return array<int, string>
	 */
	private static function raw_list( $fields, $name ) {
		if ( ! isset( $fields[ $name ] ) || ! is_array( $fields[ $name ] ) ) {
			return array();
		}
		$values = array();
		foreach ( $fields[ $name ] as $value ) {
			if ( is_string( $value ) ) {
				$values[] = wp_unslash( $value );
			}
		}
		return $values;
	}

	/**
	 * Reads the posted message body.
	 *
	 * The body is plain text that bridge stores as sent and escapes wherever it
	 * shows it, so tags are kept: "a <b> c" must arrive as written. Invalid
	 * UTF-8 is removed and line breaks are normalized.
	 *
	 * @param array $fields The posted fields, still slashed.
	 * @return string The body, '' when missing or blank.
	 */
	public static function message_body( $fields ) {
		if ( ! isset( $fields['body'] ) || ! is_string( $fields['body'] ) ) {
			return '';
		}
		$body = wp_check_invalid_utf8( wp_unslash( $fields['body'] ), true );
		$body = str_replace( array( "\r\n", "\r" ), "\n", $body );
		return '' === trim( $body ) ? '' : $body;
	}

	/**
	 * Starts (or reopens) a conversation with a partner and sends the first message.
	 *
	 * @param Coachbridge_Client $client  Client for bridge.
	 * @param int                $partner WordPress user id of the partner.
	 * @param string             $body    Message body.
	 * @param int                $user_id Acting WordPress user id.
	 * @param array              $query   Redirect query; gets the conversation id.
	 * @return string Notice code.
	 */
	private static function start_conversation( $client, $partner, $body, $user_id, &$query ) {
		if ( $partner < 1 || '' === $body ) {
			return 'invalid';
		}
		$response = $client->request( 'POST', '/api/v1/conversations', array(), wp_json_encode( array( 'partner_id' => $partner ) ), $user_id );
		$notice   = self::notice_for( $response, 'sent' );
		if ( 'sent' !== $notice ) {
			return $notice;
		}
		$conversation = json_decode( $response['body'], true );
		if ( ! is_array( $conversation ) || ! isset( $conversation['id'] ) || ! is_int( $conversation['id'] ) ) {
			Coachbridge_Pages::log_error( new WP_Error( 'coachbridge_invalid_json', 'bridge returned a conversation without an id' ) );
			return 'unavailable';
		}

		$query['view']         = 'messages';
		$query['conversation'] = (string) $conversation['id'];
		$request               = array( 'POST', '/api/v1/conversations/' . $conversation['id'] . '/messages', array( 'body' => $body ) );
		return self::send_all( $client, array( $request ), $user_id, 'sent' );
	}

	/**
	 * Sends requests in order until one fails, and returns the notice code.
	 *
	 * @param Coachbridge_Client $client   Client for bridge.
	 * @param array|null         $requests Method, path and body (null or an array) of each request.
	 * @param int                $user_id  Acting WordPress user id.
	 * @param string             $success  Notice code when every request succeeds.
	 * @return string Notice code.
	 */
	private static function send_all( $client, $requests, $user_id, $success ) {
		if ( null === $requests ) {
			return 'invalid';
		}
		foreach ( $requests as $request ) {
			$body     = null === $request[2] ? '' : wp_json_encode( $request[2] );
			$response = $client->request( $request[0], $request[1], array(), $body, $user_id );
			$notice   = self::notice_for( $response, $success );
			if ( $success !== $notice ) {
				return $notice;
			}
		}
		return $success;
	}

	/**
	 * Maps a bridge response to a notice code, logging failures of bridge itself.
	 *
	 * @param array|WP_Error $response Response from Coachbridge_Client::request().
	 * @param string         $success  Notice code for a 2xx status.
	 * @return string
	 */
	private static function notice_for( $response, $success ) {
		if ( is_wp_error( $response ) ) {
			Coachbridge_Pages::log_error( $response );
			return 'unavailable';
		}
		$status = $response['status'];
		if ( $status >= 200 && $status < 300 ) {
			return $success;
		}
		if ( $status >= 500 || 401 === $status ) {
			Coachbridge_Pages::log_error(
				new WP_Error( 'coachbridge_form_failed', sprintf( 'bridge returned HTTP %1$d to a form: %2$s', $status, Coachbridge_Client::error_message( $response['body'] ) ) )
			);
			return 'unavailable';
		}
		return 403 === $status ? 'not_allowed' : 'failed';
	}

	/**
	 * Rebuilds the tab's query from the form's coachbridge_return field, keeping known parameters only.
	 *
	 * @param string $return Query string such as view=program&enrollment=3.
	 * @return array<string, string>
	 */
	public static function return_query( $return ) {
		$fields = array();
		parse_str( (string) $return, $fields );
		$query = array( 'action' => Coachbridge_Account::ACTION );

		$view = isset( $fields['view'] ) && is_string( $fields['view'] ) ? sanitize_key( $fields['view'] ) : '';
		if ( in_array( $view, self::VIEWS, true ) ) {
			$query['view'] = $view;
		}
		foreach ( array( 'enrollment', 'conversation' ) as $name ) {
			if ( isset( $fields[ $name ] ) && is_string( $fields[ $name ] ) && preg_match( '/^[1-9][0-9]{0,18}$/D', $fields[ $name ] ) ) {
				$query[ $name ] = $fields[ $name ];
			}
		}
		foreach ( array( 'from', 'to' ) as $name ) {
			if ( isset( $fields[ $name ] ) && is_string( $fields[ $name ] ) && preg_match( '/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/D', $fields[ $name ] ) ) {
				$query[ $name ] = $fields[ $name ];
			}
		}
		return $query;
	}

	/**
	 * Returns the message shown for a notice code after a redirect, or '' for an unknown code.
	 *
	 * @param string $notice Notice code.
	 * @return string
	 */
	public static function notice_message( $notice ) {
		$messages = array(
			'saved'       => __( 'Your changes were saved.', 'coachbridge' ),
			'sent'        => __( 'Your message was sent.', 'coachbridge' ),
			'invalid'     => __( 'Nothing was sent: the form was incomplete. Please try again.', 'coachbridge' ),
			'failed'      => __( 'Your change was not saved. Please reload the page and try again.', 'coachbridge' ),
			'not_allowed' => __( 'You are not allowed to make this change.', 'coachbridge' ),
			'unavailable' => Coachbridge_Pages::unavailable_message(),
		);
		return isset( $messages[ $notice ] ) ? $messages[ $notice ] : '';
	}
}

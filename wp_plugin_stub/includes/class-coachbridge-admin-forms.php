<?php
/**
 * The handler of the forms in the Coaching menu's pages.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Receives the console's forms at admin-post.php and forwards them to bridge.
 *
 * bridge renders each form with the action URL and nonce that the admin pages
 * pass in the signed page query. The handler checks the nonce, then the
 * capability, forwards the fields signed to bridge's form endpoint and
 * redirects to the page bridge names, with a one-time notice. Two forms are
 * handled here instead: the CSV download, which streams bridge's file, and
 * the new coach, whose WordPress user only WordPress can create.
 */
final class Coachbridge_Admin_Forms {

	// The admin-post.php action, also the nonce action.
	const ACTION = 'coachbridge_admin_action';

	const CAPABILITY = 'manage_options';

	// Creating a WordPress user needs this capability too.
	const CREATE_USERS_CAPABILITY = 'create_users';

	// Forms that bridge applies at POST /pages/admin/forms/<name>.
	const FORWARDED = array(
		'program-create',
		'program-update',
		'program-delete',
		'program-duplicate',
		'cohort-create',
		'cohort-update',
		'cohort-coach',
		'coach-add',
		'client-add',
		'client-assign',
		'client-unenroll',
	);

	// Posted fields that belong to WordPress or to this handler, never forwarded.
	const RESERVED_FIELDS = array( 'action', '_wpnonce', '_wp_http_referer', 'coachbridge_form' );

	// Limits of a forwarded form: a program with a few hundred milestone and
	// habit rows fits.
	const MAX_FIELDS = 64;
	const MAX_LIST_ITEMS = 1000;
	const MAX_BODY_BYTES = 262144;

	// Seconds a notice waits for the next page view of the same user.
	const NOTICE_SECONDS = 120;

	const EXPORT_PATH = '/api/v1/admin/progress.csv';

	/**
	 * Registers the handler; admin-post.php runs it for logged-in users only.
	 */
	public static function register_hooks() {
		add_action( 'admin_post_' . self::ACTION, array( __CLASS__, 'handle' ) );
	}

	/**
	 * Returns the URL the console's forms post to.
	 *
	 * @return string
	 */
	public static function action_url() {
		return admin_url( 'admin-post.php' );
	}

	/**
	 * Returns a new nonce for the console's forms.
	 *
	 * @return string
	 */
	public static function nonce() {
		return wp_create_nonce( self::ACTION );
	}

	/**
	 * Handles a form: nonce, then capability, then the form, then a redirect or a download.
	 */
	public static function handle() {
		check_admin_referer( self::ACTION );
		if ( ! current_user_can( self::CAPABILITY ) ) {
			wp_die( esc_html__( 'You are not allowed to change the coaching settings.', 'coachbridge' ), '', array( 'response' => 403 ) );
		}

		$result = self::dispatch( get_current_user_id() );
		if ( isset( $result['download'] ) ) {
			self::send_download( $result['download']['filename'], $result['download']['body'] );
			exit;
		}
		wp_safe_redirect( $result['redirect'] );
		exit;
	}

	/**
	 * Runs the posted form and returns where to go next, or a file to send.
	 *
	 * The caller has checked the nonce and the capability.
	 *
	 * @param int $user_id Acting WordPress user id.
	 * @return array{redirect?: string, download?: array{filename: string, body: string}}
	 */
	public static function dispatch( $user_id ) {
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- handle() checked the nonce.
		$form = isset( $_POST['coachbridge_form'] ) ? sanitize_key( wp_unslash( $_POST['coachbridge_form'] ) ) : '';
		// phpcs:enable

		$client = Coachbridge_Client::from_settings();
		if ( is_wp_error( $client ) ) {
			Coachbridge_Pages::log_error( $client );
			return self::back( $user_id, 'error', Coachbridge_Pages::unavailable_message() );
		}

		if ( 'export-progress' === $form ) {
			return self::export( $client, $user_id );
		}
		if ( 'coach-new-user' === $form ) {
			return self::create_coach_user( $client, $user_id );
		}
		if ( in_array( $form, self::FORWARDED, true ) ) {
			return self::forward( $client, $form, $user_id );
		}
		return self::back( $user_id, 'error', __( 'Nothing was changed: the form is unknown. Please reload the page.', 'coachbridge' ) );
	}

	/**
	 * Sends a form's fields to bridge and returns the redirect that bridge names.
	 *
	 * @param Coachbridge_Client $client  Client for bridge.
	 * @param string             $form    Form name.
	 * @param int                $user_id Acting WordPress user id.
	 * @return array{redirect: string}
	 */
	private static function forward( $client, $form, $user_id ) {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- handle() checked the nonce.
		$fields = self::form_fields( $_POST );
		$body   = wp_json_encode( (object) $fields );
		if ( null === $fields || false === $body || strlen( $body ) > self::MAX_BODY_BYTES ) {
			return self::back( $user_id, 'error', __( 'Nothing was changed: the form is too large.', 'coachbridge' ) );
		}

		$response = $client->request( 'POST', '/pages/admin/forms/' . $form, array(), $body, $user_id );
		$failure  = self::failure_message( $response );
		if ( null !== $failure ) {
			return self::back( $user_id, 'error', $failure );
		}

		$outcome = json_decode( $response['body'], true );
		$message = is_array( $outcome ) && isset( $outcome['message'] ) && is_string( $outcome['message'] ) ? $outcome['message'] : __( 'Saved.', 'coachbridge' );
		$target  = is_array( $outcome ) && isset( $outcome['return_query'] ) && is_array( $outcome['return_query'] ) ? self::admin_page_url( $outcome['return_query'] ) : null;
		return self::back( $user_id, 'success', $message, $target );
	}

	/**
	 * Collects the posted fields to forward: strings and lists of strings.
	 *
	 * Free text keeps characters such as < and &, because bridge stores it as
	 * plain text and escapes it wherever it is shown; sanitize_text_field()
	 * would turn "a < b" into an entity. Invalid UTF-8 and control characters
	 * other than tab and line feed are removed, and line breaks normalized.
	 * Field names outside [a-z0-9_] and nested arrays are dropped.
	 *
	 * @param array $post The posted fields, still slashed.
	 * @return array<string, string|array<int, string>>|null Null when the form exceeds the limits.
	 */
	public static function form_fields( $post ) {
		$fields = array();
		foreach ( (array) $post as $name => $value ) {
			if ( ! is_string( $name ) || in_array( $name, self::RESERVED_FIELDS, true ) || ! preg_match( '/^[a-z][a-z0-9_]{0,63}$/D', $name ) ) {
				continue;
			}
			if ( is_string( $value ) ) {
				$fields[ $name ] = self::clean_text( $value );
			} elseif ( is_array( $value ) ) {
				if ( count( $value ) > self::MAX_LIST_ITEMS ) {
					return null;
				}
				$fields[ $name ] = array_values( array_map( array( __CLASS__, 'clean_text' ), array_filter( $value, 'is_string' ) ) );
			}
		}
		return count( $fields ) > self::MAX_FIELDS ? null : $fields;
	}

	/**
	 * Unslashes a posted text and removes what no field may contain.
	 *
	 * @param string $value Posted value, still slashed.
	 * @return string
	 */
	public static function clean_text( $value ) {
		$text = wp_check_invalid_utf8( wp_unslash( $value ), true );
		$text = str_replace( array( "\r\n", "\r" ), "\n", $text );
		return (string) preg_replace( '/[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]/', '', $text );
	}

	/**
	 * Fetches the client progress CSV with the posted filters.
	 *
	 * @param Coachbridge_Client $client  Client for bridge.
	 * @param int                $user_id Acting WordPress user id.
	 * @return array{redirect?: string, download?: array{filename: string, body: string}}
	 */
	private static function export( $client, $user_id ) {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- handle() checked the nonce.
		$query    = self::export_query( $_POST );
		$response = $client->request( 'GET', self::EXPORT_PATH, $query, '', $user_id );
		$failure  = self::failure_message( $response );
		if ( null !== $failure ) {
			return self::back( $user_id, 'error', $failure );
		}
		$filename = 'coaching-progress-' . gmdate( 'Y-m-d' ) . '.csv';
		return array(
			'download' => array(
				'filename' => $filename,
				'body'     => $response['body'],
			),
		);
	}

	/**
	 * Returns the filters of the progress export from the posted fields, sanitized.
	 *
	 * @param array $post The posted fields, still slashed.
	 * @return array<string, string>
	 */
	public static function export_query( $post ) {
		$query = array();
		foreach ( array( 'program', 'coach', 'cohort' ) as $name ) {
			$id = isset( $post[ $name ] ) && is_string( $post[ $name ] ) ? absint( wp_unslash( $post[ $name ] ) ) : 0;
			if ( $id > 0 ) {
				$query[ $name ] = (string) $id;
			}
		}
		$choices = array(
			'status'    => array( 'active', 'inactive', 'all' ),
			'off_track' => array( '1' ),
			'sort'      => array( 'last_activity', 'name', 'program', 'progress' ),
			'order'     => array( 'asc', 'desc' ),
		);
		foreach ( $choices as $name => $allowed ) {
			$value = isset( $post[ $name ] ) && is_string( $post[ $name ] ) ? sanitize_key( wp_unslash( $post[ $name ] ) ) : '';
			if ( in_array( $value, $allowed, true ) ) {
				$query[ $name ] = $value;
			}
		}
		$search = isset( $post['q'] ) && is_string( $post['q'] ) ? sanitize_text_field( wp_unslash( $post['q'] ) ) : '';
		if ( '' !== $search ) {
			$query['q'] = $search;
		}
		return $query;
	}

	/**
	 * Sends a CSV file to the browser as a download.
	 *
	 * @param string $filename File name offered to the browser.
	 * @param string $body     CSV text from bridge, already UTF-8 with a byte order mark.
	 */
	private static function send_download( $filename, $body ) {
		nocache_headers();
		header( 'Content-Type: text/csv; charset=utf-8' );
		header( 'Content-Disposition: attachment; filename="' . sanitize_file_name( $filename ) . '"' );
		header( 'X-Content-Type-Options: nosniff' );
		echo $body; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- a CSV file, not HTML.
	}

	/**
	 * Creates a WordPress user and registers it with bridge as a coach.
	 *
	 * The user gets the Subscriber role, which is enough to open the Coaching
	 * page in wp-admin, and an email with a link to set a password.
	 *
	 * @param Coachbridge_Client $client  Client for bridge.
	 * @param int                $user_id Acting WordPress user id.
	 * @return array{redirect: string}
	 */
	private static function create_coach_user( $client, $user_id ) {
		if ( ! current_user_can( self::CREATE_USERS_CAPABILITY ) ) {
			return self::back( $user_id, 'error', __( 'You are not allowed to create WordPress users.', 'coachbridge' ) );
		}
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- handle() checked the nonce.
		$login        = isset( $_POST['user_login'] ) && is_string( $_POST['user_login'] ) ? sanitize_user( wp_unslash( $_POST['user_login'] ), true ) : '';
		$email        = isset( $_POST['user_email'] ) && is_string( $_POST['user_email'] ) ? sanitize_email( wp_unslash( $_POST['user_email'] ) ) : '';
		$display_name = isset( $_POST['display_name'] ) && is_string( $_POST['display_name'] ) ? sanitize_text_field( wp_unslash( $_POST['display_name'] ) ) : '';
		// phpcs:enable
		if ( '' === $login || ! is_email( $email ) ) {
			return self::back( $user_id, 'error', __( 'No user was created: enter a username and a valid email address.', 'coachbridge' ) );
		}

		$new_user = wp_insert_user(
			array(
				'user_login'   => $login,
				'user_email'   => $email,
				'display_name' => '' === $display_name ? $login : $display_name,
				'user_pass'    => wp_generate_password( 24 ),
				'role'         => 'subscriber',
			)
		);
		if ( is_wp_error( $new_user ) ) {
			/* translators: %s: WordPress's reason, such as "Sorry, that username already exists!". */
			return self::back( $user_id, 'error', sprintf( __( 'No user was created: %s', 'coachbridge' ), $new_user->get_error_message() ) );
		}
		wp_new_user_notification( $new_user, null, 'user' );

		$response = $client->request( 'POST', '/api/v1/admin/coaches', array(), wp_json_encode( array( 'wp_user_id' => $new_user ) ), $user_id );
		$failure  = self::failure_message( $response );
		if ( null !== $failure ) {
			/* translators: 1: the new user's login, 2: why bridge did not register the coach. */
			return self::back( $user_id, 'error', sprintf( __( 'The WordPress user %1$s was created but not registered as a coach: %2$s Register them from the Coaches page.', 'coachbridge' ), $login, $failure ) );
		}
		$coach = json_decode( $response['body'], true );
		$query = array( 'page' => Coachbridge_Admin::MENU_SLUG . '-coaches' );
		if ( is_array( $coach ) && isset( $coach['id'] ) && is_int( $coach['id'] ) ) {
			$query['coach'] = (string) $coach['id'];
		}
		/* translators: %s: the new user's login. */
		return self::back( $user_id, 'success', sprintf( __( 'The WordPress user %s was created and registered as a coach.', 'coachbridge' ), $login ), self::admin_page_url( $query ) );
	}

	/**
	 * Returns the message for a failed bridge response, or null for a 2xx status.
	 *
	 * bridge's own message is shown for the statuses it uses to explain a
	 * refusal. Failures of bridge itself are logged and shown as unavailable.
	 *
	 * @param array|WP_Error $response Response from Coachbridge_Client::request().
	 * @return string|null
	 */
	public static function failure_message( $response ) {
		if ( is_wp_error( $response ) ) {
			Coachbridge_Pages::log_error( $response );
			return Coachbridge_Pages::unavailable_message();
		}
		$status = $response['status'];
		if ( $status >= 200 && $status < 300 ) {
			return null;
		}
		if ( in_array( $status, array( 400, 403, 404, 409 ), true ) ) {
			return Coachbridge_Client::error_message( $response['body'] );
		}
		Coachbridge_Pages::log_error(
			new WP_Error( 'coachbridge_admin_form_failed', sprintf( 'bridge returned HTTP %1$d to an admin form: %2$s', $status, Coachbridge_Client::error_message( $response['body'] ) ) )
		);
		return Coachbridge_Pages::unavailable_message();
	}

	/**
	 * Builds the URL of a Coaching page from bridge's return query, keeping known values only.
	 *
	 * @param array $query Such as array( 'page' => 'coachbridge-programs', 'program' => '3' ).
	 * @return string|null Null when the page is not a Coaching page.
	 */
	public static function admin_page_url( $query ) {
		$page = isset( $query['page'] ) && is_string( $query['page'] ) ? sanitize_key( $query['page'] ) : '';
		if ( ! isset( Coachbridge_Admin::admin_pages()[ $page ] ) ) {
			return null;
		}
		$kept = array( 'page' => $page );
		foreach ( array( 'program', 'cohort', 'coach', 'client', 'enrollment' ) as $name ) {
			if ( isset( $query[ $name ] ) && is_string( $query[ $name ] ) && preg_match( '/^[1-9][0-9]{0,18}$/D', $query[ $name ] ) ) {
				$kept[ $name ] = $query[ $name ];
			}
		}
		return add_query_arg( $kept, admin_url( 'admin.php' ) );
	}

	/**
	 * Stores a notice for the user's next Coaching page and returns the redirect.
	 *
	 * @param int         $user_id Acting WordPress user id.
	 * @param string      $type    success or error.
	 * @param string      $message Plain text.
	 * @param string|null $target  Where to go; the referring page, or Activity, when null.
	 * @return array{redirect: string}
	 */
	private static function back( $user_id, $type, $message, $target = null ) {
		set_transient(
			self::notice_key( $user_id ),
			array(
				'type'    => $type,
				'message' => $message,
			),
			self::NOTICE_SECONDS
		);
		if ( null === $target ) {
			$referer = wp_get_referer();
			$target  = $referer ? $referer : add_query_arg( 'page', Coachbridge_Admin::MENU_SLUG, admin_url( 'admin.php' ) );
		}
		return array( 'redirect' => $target );
	}

	/**
	 * Returns the user's pending notice as HTML and deletes it, or '' when there is none.
	 *
	 * @param int $user_id WordPress user id.
	 * @return string
	 */
	public static function take_notice( $user_id ) {
		$key    = self::notice_key( $user_id );
		$notice = get_transient( $key );
		if ( ! is_array( $notice ) || ! isset( $notice['type'], $notice['message'] ) ) {
			return '';
		}
		delete_transient( $key );
		$type = 'success' === $notice['type'] ? 'success' : 'error';
		return sprintf(
			'<div class="notice notice-%1$s is-dismissible"><p>%2$s</p></div>',
			esc_attr( $type ),
			esc_html( (string) $notice['message'] )
		);
	}

	/**
	 * Returns the transient key of a user's pending notice.
	 *
	 * @param int $user_id WordPress user id.
	 * @return string
	 */
	private static function notice_key( $user_id ) {
		return 'coachbridge_admin_notice_' . absint( $user_id );
	}
}

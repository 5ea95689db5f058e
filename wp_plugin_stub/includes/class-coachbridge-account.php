<?php
/**
 * The Coaching tab on the MemberPress account page.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

require_once __DIR__ . '/class-coachbridge-forms.php';

/**
 * Adds the tab to MemberPress's account navigation and shows bridge's client page in it.
 */
final class Coachbridge_Account {

	// Value of the account page's ?action= parameter that selects the tab.
	const ACTION = 'coaching';

	const CLIENT_PAGE_PATH = '/pages/client';

	/**
	 * Registers the MemberPress hooks and the page preparation.
	 */
	public static function register_hooks() {
		add_action( 'mepr_account_nav', array( __CLASS__, 'render_nav' ), 10, 1 );
		// Newer MemberPress versions pass the account form's attributes as a second
		// argument and older ones pass the action only, so $atts has a default.
		add_action( 'mepr_account_nav_content', array( __CLASS__, 'render_content' ), 10, 2 );
		add_action( 'template_redirect', array( __CLASS__, 'prepare_tab' ) );
		Coachbridge_Forms::register_hooks();
	}

	/**
	 * Prints the Coaching item of the account navigation.
	 *
	 * @param MeprUser|null $user The member viewing the page, unused because the tab is the same for everyone.
	 */
	public static function render_nav( $user = null ) {
		unset( $user );
		$classes = 'mepr-nav-item coachbridge-nav-item';
		if ( self::is_current_tab() ) {
			$classes .= ' mepr-active-nav-tab';
		}
		printf(
			'<span class="%1$s"><a href="%2$s" id="coachbridge-account-coaching">%3$s</a></span>',
			esc_attr( $classes ),
			esc_url( self::tab_url() ),
			esc_html__( 'Coaching', 'coachbridge' )
		);
	}

	/**
	 * Prints the tab body: bridge's client page for the current user.
	 *
	 * @param string $action MemberPress account action.
	 * @param array  $atts   Shortcode attributes of the account form, unused.
	 */
	public static function render_content( $action, $atts = array() ) {
		unset( $atts );
		if ( self::ACTION !== $action ) {
			return;
		}
		if ( ! is_user_logged_in() ) {
			echo Coachbridge_Pages::notice( __( 'Please log in to see your coaching.', 'coachbridge' ) ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- notice() escapes.
			return;
		}

		$html = Coachbridge_Pages::render(
			self::CLIENT_PAGE_PATH,
			self::page_query(),
			get_current_user_id(),
			__( 'This coaching page was not found.', 'coachbridge' )
		);
		echo '<div class="coachbridge-tab">' . self::form_notice() . $html . '</div>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- form_notice() escapes and render() filters with wp_kses().
	}

	/**
	 * Returns the notice of a form handled before the redirect to the tab, or ''.
	 *
	 * @return string HTML that is safe to echo.
	 */
	public static function form_notice() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- only picks a message.
		$notice  = isset( $_GET['coachbridge_notice'] ) ? sanitize_key( wp_unslash( $_GET['coachbridge_notice'] ) ) : '';
		$message = Coachbridge_Forms::notice_message( $notice );
		return '' === $message ? '' : Coachbridge_Pages::notice( $message );
	}

	/**
	 * Sends no-cache headers and loads the tab's script and styles when the tab is shown.
	 *
	 * The tab contains one member's progress, so no page cache may keep it.
	 */
	public static function prepare_tab() {
		if ( ! self::is_current_tab() || ! is_user_logged_in() ) {
			return;
		}
		nocache_headers();
		Coachbridge_Proxy::enqueue_script();
		wp_enqueue_style(
			'coachbridge-tab',
			plugins_url( 'assets/coachbridge.css', COACHBRIDGE_PLUGIN_FILE ),
			array(),
			COACHBRIDGE_VERSION
		);
	}

	/**
	 * Returns the query parameters passed on to bridge, sanitized, and where forms post.
	 *
	 * bridge reads view, enrollment, program, conversation, from and to. It
	 * renders form_action and form_nonce into its plain forms, which then post
	 * to Coachbridge_Forms. All of them are part of the signed query.
	 *
	 * @return array<string, string>
	 */
	public static function page_query() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- read-only navigation.
		$query = array();
		if ( isset( $_GET['view'] ) ) {
			$view = sanitize_key( wp_unslash( $_GET['view'] ) );
			if ( '' !== $view ) {
				$query['view'] = $view;
			}
		}
		foreach ( array( 'program', 'enrollment', 'conversation' ) as $name ) {
			if ( isset( $_GET[ $name ] ) ) {
				$id = absint( wp_unslash( $_GET[ $name ] ) );
				if ( $id > 0 ) {
					$query[ $name ] = (string) $id;
				}
			}
		}
		foreach ( array( 'from', 'to' ) as $name ) {
			if ( isset( $_GET[ $name ] ) ) {
				$day = sanitize_text_field( wp_unslash( $_GET[ $name ] ) );
				if ( preg_match( '/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/D', $day ) ) {
					$query[ $name ] = $day;
				}
			}
		}
		// phpcs:enable
		$query['form_action'] = Coachbridge_Forms::action_url();
		$query['form_nonce']  = Coachbridge_Forms::nonce();
		return $query;
	}

	/**
	 * Returns whether the request shows the Coaching tab.
	 *
	 * @return bool
	 */
	public static function is_current_tab() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only navigation.
		return isset( $_GET['action'] ) && self::ACTION === sanitize_key( wp_unslash( $_GET['action'] ) );
	}

	/**
	 * Returns the URL of the tab: the MemberPress account page with ?action=coaching.
	 *
	 * @return string
	 */
	public static function tab_url() {
		return add_query_arg( 'action', self::ACTION, self::account_url() );
	}

	/**
	 * Returns the MemberPress account page URL without a query.
	 *
	 * Without MemberPress's setting it falls back to the current post, or, in a
	 * form handler where there is none, to the page that sent the form.
	 *
	 * @return string
	 */
	public static function account_url() {
		$account_url = '';
		if ( class_exists( 'MeprOptions' ) ) {
			$account_url = MeprOptions::fetch()->account_page_url();
		}
		if ( ! $account_url ) {
			$account_url = get_permalink();
		}
		if ( ! $account_url ) {
			$referer     = wp_get_referer();
			$account_url = $referer ? strtok( $referer, '?' ) : home_url( '/' );
		}
		return $account_url;
	}
}

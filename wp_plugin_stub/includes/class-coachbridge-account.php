<?php
/**
 * The Coaching tab on the MemberPress account page.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

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
		echo '<div class="coachbridge-tab">' . $html . '</div>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- render() filters with wp_kses().
	}

	/**
	 * Sends no-cache headers and loads the tab's script when the tab is shown.
	 *
	 * The tab contains one member's progress, so no page cache may keep it.
	 */
	public static function prepare_tab() {
		if ( ! self::is_current_tab() || ! is_user_logged_in() ) {
			return;
		}
		nocache_headers();
		Coachbridge_Proxy::enqueue_script();
	}

	/**
	 * Returns the query parameters passed on to bridge: view and program, sanitized.
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
		if ( isset( $_GET['program'] ) ) {
			$program = absint( wp_unslash( $_GET['program'] ) );
			if ( $program > 0 ) {
				$query['program'] = (string) $program;
			}
		}
		// phpcs:enable
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
		$account_url = '';
		if ( class_exists( 'MeprOptions' ) ) {
			$account_url = MeprOptions::fetch()->account_page_url();
		}
		if ( ! $account_url ) {
			$account_url = get_permalink();
		}
		return add_query_arg( 'action', self::ACTION, $account_url );
	}
}

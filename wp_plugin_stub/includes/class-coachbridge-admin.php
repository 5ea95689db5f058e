<?php
/**
 * The Coaching menu in wp-admin.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

require_once __DIR__ . '/class-coachbridge-admin-forms.php';

/**
 * Adds the Coaching menu and shows bridge's admin and coach pages in it.
 *
 * Administrators (manage_options) get Activity, Programs, Coaches, Clients and
 * My clients. Every other user with the read capability gets one Coaching page
 * with the coach view, whose sections (Activity, Clients, Programs) bridge
 * links to with ?section=. The plugin does not know who is a coach: bridge
 * returns 404 for users without a coaches row, and the page then shows that
 * message. This costs no extra request per admin screen, but members who can
 * open wp-admin see a Coaching menu item too.
 */
final class Coachbridge_Admin {

	const MENU_SLUG        = 'coachbridge';
	const COACH_MENU_SLUG  = 'coachbridge-coach';
	const ADMIN_CAPABILITY = 'manage_options';
	const COACH_CAPABILITY = 'read';

	// bridge's page for each section of the coach view, chosen with ?section=.
	const COACH_SECTIONS = array(
		'activity' => '/pages/admin/activity',
		'clients'  => '/pages/admin/clients',
		'programs' => '/pages/admin/programs',
		'coaches'  => '/pages/admin/coaches',
	);

	const STYLE_HANDLE = 'coachbridge-admin';
	const STYLE_PATH   = '/pages/admin/admin.css';
	const STYLE_CACHE  = 'coachbridge_admin_css';

	// Seconds the stylesheet is kept, and a failed fetch remembered.
	const STYLE_SECONDS       = 3600;
	const STYLE_RETRY_SECONDS = 300;

	// bridge rejects pages of more rows.
	const MAX_PER_PAGE = 100;

	/**
	 * Registers the menu, the script and style loading, and the form handler.
	 */
	public static function register_hooks() {
		add_action( 'admin_menu', array( __CLASS__, 'add_menus' ) );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'enqueue' ) );
		Coachbridge_Admin_Forms::register_hooks();
	}

	/**
	 * Returns the administrator pages: menu slug => title and bridge path.
	 *
	 * @return array<string, array{title: string, path: string}>
	 */
	public static function admin_pages() {
		return array(
			self::MENU_SLUG                => array(
				'title' => __( 'Activity', 'coachbridge' ),
				'path'  => '/pages/admin/activity',
			),
			self::MENU_SLUG . '-programs' => array(
				'title' => __( 'Programs', 'coachbridge' ),
				'path'  => '/pages/admin/programs',
			),
			self::MENU_SLUG . '-coaches'  => array(
				'title' => __( 'Coaches', 'coachbridge' ),
				'path'  => '/pages/admin/coaches',
			),
			self::MENU_SLUG . '-clients'  => array(
				'title' => __( 'Clients', 'coachbridge' ),
				'path'  => '/pages/admin/clients',
			),
			self::COACH_MENU_SLUG         => array(
				'title' => __( 'My clients', 'coachbridge' ),
				'path'  => '/pages/coach',
			),
		);
	}

	/**
	 * Adds the menu that fits the current user.
	 */
	public static function add_menus() {
		if ( current_user_can( self::ADMIN_CAPABILITY ) ) {
			add_menu_page(
				__( 'Coaching', 'coachbridge' ),
				__( 'Coaching', 'coachbridge' ),
				self::ADMIN_CAPABILITY,
				self::MENU_SLUG,
				array( __CLASS__, 'render_page' ),
				'dashicons-groups',
				58
			);
			foreach ( self::admin_pages() as $slug => $page ) {
				add_submenu_page(
					self::MENU_SLUG,
					$page['title'],
					$page['title'],
					self::ADMIN_CAPABILITY,
					$slug,
					array( __CLASS__, 'render_page' )
				);
			}
			return;
		}

		add_menu_page(
			__( 'Coaching', 'coachbridge' ),
			__( 'Coaching', 'coachbridge' ),
			self::COACH_CAPABILITY,
			self::COACH_MENU_SLUG,
			array( __CLASS__, 'render_page' ),
			'dashicons-groups',
			58
		);
	}

	/**
	 * Prints the current Coaching page: bridge's page for the menu slug in ?page=.
	 */
	public static function render_page() {
		$slug  = self::current_slug();
		$pages = self::admin_pages();
		if ( ! isset( $pages[ $slug ] ) ) {
			return;
		}
		$is_coach_view = self::COACH_MENU_SLUG === $slug;
		$capability    = $is_coach_view ? self::COACH_CAPABILITY : self::ADMIN_CAPABILITY;
		if ( ! current_user_can( $capability ) ) {
			wp_die( esc_html__( 'You are not allowed to see this page.', 'coachbridge' ), '', array( 'response' => 403 ) );
		}

		$not_found = $is_coach_view
			? __( 'You are not registered as a coach. An administrator can add you under Coaching → Coaches.', 'coachbridge' )
			: __( 'This page was not found.', 'coachbridge' );
		$user_id   = get_current_user_id();
		$html      = Coachbridge_Pages::render_admin( self::bridge_path( $slug ), self::bridge_query(), $user_id, $not_found );

		echo '<div class="wrap coachbridge-admin">';
		echo '<h1>' . esc_html( $pages[ $slug ]['title'] ) . '</h1>';
		echo Coachbridge_Admin_Forms::take_notice( $user_id ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- take_notice() escapes.
		echo $html; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- render_admin() filters with wp_kses().
		echo '</div>';
	}

	/**
	 * Returns bridge's path for a menu slug; the coach view picks it by ?section=.
	 *
	 * @param string $slug Menu slug.
	 * @return string
	 */
	public static function bridge_path( $slug ) {
		$pages = self::admin_pages();
		if ( self::COACH_MENU_SLUG !== $slug ) {
			return $pages[ $slug ]['path'];
		}
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only navigation.
		$section = isset( $_GET['section'] ) ? sanitize_key( wp_unslash( $_GET['section'] ) ) : '';
		return isset( self::COACH_SECTIONS[ $section ] ) ? self::COACH_SECTIONS[ $section ] : $pages[ $slug ]['path'];
	}

	/**
	 * Returns the signed query for bridge: the page's parameters and, for administrators, the forms' target.
	 *
	 * bridge renders forms only for administrators, with the admin-post.php URL
	 * and a nonce that Coachbridge_Admin_Forms checks. The user editor's URL lets
	 * bridge link to WordPress's own page for a client.
	 *
	 * @return array<string, string>
	 */
	public static function bridge_query() {
		$query = self::page_query();
		if ( current_user_can( self::ADMIN_CAPABILITY ) ) {
			$query['form_action']   = Coachbridge_Admin_Forms::action_url();
			$query['form_nonce']    = Coachbridge_Admin_Forms::nonce();
			$query['user_edit_url'] = admin_url( 'user-edit.php' );
		}
		return $query;
	}

	/**
	 * Loads the proxy script and the console's stylesheet on the Coaching pages only.
	 *
	 * @param string $hook_suffix Screen id of the admin page.
	 */
	public static function enqueue( $hook_suffix ) {
		unset( $hook_suffix );
		if ( ! isset( self::admin_pages()[ self::current_slug() ] ) ) {
			return;
		}
		Coachbridge_Proxy::enqueue_script();
		$css = self::stylesheet();
		if ( '' !== $css ) {
			wp_register_style( self::STYLE_HANDLE, false, array(), COACHBRIDGE_VERSION );
			wp_enqueue_style( self::STYLE_HANDLE );
			wp_add_inline_style( self::STYLE_HANDLE, $css );
		}
	}

	/**
	 * Returns bridge's stylesheet for the console, cached, or '' when bridge did not send one.
	 *
	 * The stylesheet is printed inside a style element, so one that contains
	 * a "<" is dropped: it could close the element.
	 *
	 * @return string
	 */
	public static function stylesheet() {
		$cached = get_transient( self::STYLE_CACHE );
		if ( is_string( $cached ) ) {
			return $cached;
		}
		$css    = '';
		$client = Coachbridge_Client::from_settings();
		if ( ! is_wp_error( $client ) ) {
			$response = $client->request( 'GET', self::STYLE_PATH, array(), '', get_current_user_id() );
			if ( ! is_wp_error( $response ) && 200 === $response['status'] && false === strpos( $response['body'], '<' ) ) {
				$css = $response['body'];
			}
		}
		set_transient( self::STYLE_CACHE, $css, '' === $css ? self::STYLE_RETRY_SECONDS : self::STYLE_SECONDS );
		return $css;
	}

	/**
	 * Returns the query parameters passed on to bridge, sanitized.
	 *
	 * WordPress's own ?page= selects the screen and is not passed on, so bridge
	 * gets the page number of a list as ?paged=. The coach view's ?section= picks
	 * bridge's path instead. Values that bridge would reject are dropped, so a
	 * mistyped link shows the unfiltered page.
	 *
	 * @return array<string, string>
	 */
	public static function page_query() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- read-only navigation.
		$query = array();
		foreach ( array( 'view', 'status', 'sort', 'order', 'type' ) as $name ) {
			if ( isset( $_GET[ $name ] ) && is_string( $_GET[ $name ] ) ) {
				$value = sanitize_key( wp_unslash( $_GET[ $name ] ) );
				if ( '' !== $value ) {
					$query[ $name ] = $value;
				}
			}
		}
		foreach ( array( 'program', 'cohort', 'coach', 'client', 'enrollment', 'paged' ) as $name ) {
			if ( isset( $_GET[ $name ] ) && is_string( $_GET[ $name ] ) ) {
				$id = absint( wp_unslash( $_GET[ $name ] ) );
				if ( $id > 0 ) {
					$query[ $name ] = (string) $id;
				}
			}
		}
		if ( isset( $_GET['per_page'] ) && is_string( $_GET['per_page'] ) ) {
			$per_page = absint( wp_unslash( $_GET['per_page'] ) );
			if ( $per_page > 0 ) {
				$query['per_page'] = (string) min( $per_page, self::MAX_PER_PAGE );
			}
		}
		if ( isset( $_GET['off_track'] ) && '1' === $_GET['off_track'] ) {
			$query['off_track'] = '1';
		}
		foreach ( array( 'from', 'to' ) as $name ) {
			if ( isset( $_GET[ $name ] ) && is_string( $_GET[ $name ] ) && preg_match( '/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/D', $_GET[ $name ] ) ) {
				$query[ $name ] = sanitize_text_field( wp_unslash( $_GET[ $name ] ) );
			}
		}
		if ( isset( $_GET['q'] ) && is_string( $_GET['q'] ) ) {
			$search = sanitize_text_field( wp_unslash( $_GET['q'] ) );
			if ( '' !== $search ) {
				$query['q'] = $search;
			}
		}
		// phpcs:enable
		return $query;
	}

	/**
	 * Returns the menu slug in ?page=, or '' outside wp-admin pages.
	 *
	 * @return string
	 */
	private static function current_slug() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only navigation.
		return isset( $_GET['page'] ) ? sanitize_key( wp_unslash( $_GET['page'] ) ) : '';
	}
}

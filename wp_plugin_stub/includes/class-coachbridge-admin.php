<?php
/**
 * The Coaching menu in wp-admin.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Adds the Coaching menu and shows bridge's admin and coach pages in it.
 *
 * Administrators (manage_options) get Activity, Programs, Coaches, Clients and
 * My clients. Every other user with the read capability gets one Coaching page
 * with the coach view. The plugin does not know who is a coach: bridge returns
 * 404 for users without a coaches row, and the page then shows that message. This costs
 * no extra request per admin screen, but members who can open wp-admin see a
 * Coaching menu item too.
 */
final class Coachbridge_Admin {

	const MENU_SLUG        = 'coachbridge';
	const COACH_MENU_SLUG  = 'coachbridge-coach';
	const ADMIN_CAPABILITY = 'manage_options';
	const COACH_CAPABILITY = 'read';

	/**
	 * Registers the menu and the script loading.
	 */
	public static function register_hooks() {
		add_action( 'admin_menu', array( __CLASS__, 'add_menus' ) );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'enqueue' ) );
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
		$capability = self::COACH_MENU_SLUG === $slug ? self::COACH_CAPABILITY : self::ADMIN_CAPABILITY;
		if ( ! current_user_can( $capability ) ) {
			wp_die( esc_html__( 'You are not allowed to see this page.', 'coachbridge' ), '', array( 'response' => 403 ) );
		}

		$not_found = self::COACH_MENU_SLUG === $slug
			? __( 'You are not registered as a coach. An administrator can add you under Coaching → Coaches.', 'coachbridge' )
			: __( 'This page was not found.', 'coachbridge' );
		$html      = Coachbridge_Pages::render( $pages[ $slug ]['path'], self::page_query(), get_current_user_id(), $not_found );

		echo '<div class="wrap coachbridge-admin">';
		echo '<h1>' . esc_html( $pages[ $slug ]['title'] ) . '</h1>';
		echo $html; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- render() filters with wp_kses().
		echo '</div>';
	}

	/**
	 * Loads the proxy script on the Coaching pages only.
	 *
	 * @param string $hook_suffix Screen id of the admin page.
	 */
	public static function enqueue( $hook_suffix ) {
		unset( $hook_suffix );
		if ( isset( self::admin_pages()[ self::current_slug() ] ) ) {
			Coachbridge_Proxy::enqueue_script();
		}
	}

	/**
	 * Returns the query parameters passed on to bridge, sanitized.
	 *
	 * WordPress's own ?page= selects the screen and is not passed on, so bridge
	 * gets the page number of a list as ?paged=.
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
		foreach ( array( 'program', 'cohort', 'coach', 'client', 'enrollment', 'paged' ) as $name ) {
			if ( isset( $_GET[ $name ] ) ) {
				$id = absint( wp_unslash( $_GET[ $name ] ) );
				if ( $id > 0 ) {
					$query[ $name ] = (string) $id;
				}
			}
		}
		if ( isset( $_GET['q'] ) ) {
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

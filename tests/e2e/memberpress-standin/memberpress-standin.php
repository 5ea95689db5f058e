<?php
/**
 * Plugin Name: MemberPress stand-in (coachbridge browser tests only)
 * Description: The few MemberPress parts that coachbridge relies on, for a test site where MemberPress itself cannot be installed: its tables, memberships, the account page with its hooks, purchases, refunds and Developer Tools webhooks.
 * Version:     0.1.0
 * License:     GPL-2.0-or-later
 *
 * Never install this on a real site: any logged-in user can "buy" any membership for free.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Stands in for MemberPress in the browser tests.
 */
final class Cbe2e_Memberpress {

	const POST_TYPE           = 'memberpressproduct';
	const OPTION_WEBHOOK_URL  = 'cbe2e_webhook_url';
	const OPTION_WEBHOOK_KEY  = 'cbe2e_webhook_key';
	const OPTION_ACCOUNT_PAGE = 'cbe2e_account_page_id';
	const BUY_ACTION          = 'cbe2e_buy';
	const ACCOUNT_SHORTCODE   = 'mepr-account-form';
	// MemberPress stores a lifetime transaction's expiry as the zero date.
	const LIFETIME = '0000-00-00 00:00:00';

	/**
	 * Registers the post type, the account shortcode and the purchase handler.
	 */
	public static function register_hooks() {
		add_action( 'init', array( __CLASS__, 'register_post_type' ) );
		add_shortcode( self::ACCOUNT_SHORTCODE, array( __CLASS__, 'render_account' ) );
		add_filter( 'the_content', array( __CLASS__, 'append_buy_form' ) );
		add_action( 'admin_post_' . self::BUY_ACTION, array( __CLASS__, 'handle_buy' ) );
		// PHP's built-in server has no mod_rewrite, but the tests' router sends
		// every unknown path to index.php, which is what pretty permalinks need.
		add_filter( 'got_url_rewrite', '__return_true' );
	}

	/**
	 * Creates MemberPress's tables from schema.sql, which tests/e2e/site.sh writes.
	 */
	public static function activate() {
		global $wpdb;
		$schema = (string) file_get_contents( __DIR__ . '/schema.sql' );
		foreach ( array_filter( array_map( 'trim', explode( ';', $schema ) ) ) as $statement ) {
			if ( false === $wpdb->query( $statement ) ) {
				wp_die( esc_html( 'Could not create a MemberPress table: ' . $wpdb->last_error ) );
			}
		}
		self::register_post_type();
	}

	/**
	 * Registers memberships as MemberPress does: post type memberpressproduct under /register/.
	 */
	public static function register_post_type() {
		register_post_type(
			self::POST_TYPE,
			array(
				'label'    => 'Memberships',
				'public'   => true,
				'rewrite'  => array( 'slug' => 'register' ),
				'supports' => array( 'title', 'editor' ),
			)
		);
	}

	/**
	 * Creates a published membership with a price and returns its post id.
	 *
	 * @param string $title Membership name.
	 * @param string $price Price, as MemberPress stores it in _mepr_product_price.
	 * @return int
	 */
	public static function create_membership( $title, $price ) {
		$id = wp_insert_post(
			array(
				'post_type'    => self::POST_TYPE,
				'post_title'   => $title,
				'post_status'  => 'publish',
				'post_content' => 'Weekly coaching with a personal coach.',
			),
			true
		);
		if ( is_wp_error( $id ) ) {
			wp_die( esc_html( $id->get_error_message() ) );
		}
		update_post_meta( $id, '_mepr_product_price', $price );
		return $id;
	}

	/**
	 * Creates the Account page with MemberPress's account shortcode and returns its id.
	 *
	 * @return int
	 */
	public static function create_account_page() {
		$id = wp_insert_post(
			array(
				'post_type'    => 'page',
				'post_title'   => 'Account',
				'post_name'    => 'account',
				'post_status'  => 'publish',
				'post_content' => '[' . self::ACCOUNT_SHORTCODE . ']',
			),
			true
		);
		if ( is_wp_error( $id ) ) {
			wp_die( esc_html( $id->get_error_message() ) );
		}
		update_option( self::OPTION_ACCOUNT_PAGE, $id );
		return $id;
	}

	/**
	 * Returns the account page URL.
	 *
	 * @return string
	 */
	public static function account_url() {
		return (string) get_permalink( (int) get_option( self::OPTION_ACCOUNT_PAGE ) );
	}

	/**
	 * Renders the account page: navigation, then the selected tab.
	 *
	 * Like MemberPress, it fires mepr_account_nav with the member inside the
	 * navigation, and mepr_account_nav_content with the action and the
	 * shortcode's attributes for actions it does not handle itself.
	 *
	 * @param array|string $atts Shortcode attributes.
	 * @return string
	 */
	public static function render_account( $atts ) {
		$atts = is_array( $atts ) ? $atts : array();
		if ( ! is_user_logged_in() ) {
			return '<p class="cbe2e-login">Please <a href="' . esc_url( wp_login_url( self::account_url() ) ) . '">log in</a> to see your account.</p>';
		}
		$user = wp_get_current_user();
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only navigation.
		$action = isset( $_GET['action'] ) ? sanitize_key( wp_unslash( $_GET['action'] ) ) : 'home';

		ob_start();
		echo '<div class="mp_wrapper"><div id="mepr-account-nav">';
		self::print_nav_item( 'home', 'Home', $action );
		self::print_nav_item( 'payments', 'Payments', $action );
		do_action( 'mepr_account_nav', $user );
		echo '</div><div id="mepr-account-content">';
		if ( 'home' === $action ) {
			echo '<p>Welcome, ' . esc_html( $user->display_name ) . '.</p>';
		} elseif ( 'payments' === $action ) {
			self::print_payments( $user->ID );
		} else {
			do_action( 'mepr_account_nav_content', $action, $atts );
		}
		echo '</div></div>';
		return (string) ob_get_clean();
	}

	/**
	 * Prints one item of the account navigation.
	 *
	 * @param string $action  Action the item selects.
	 * @param string $label   Link text.
	 * @param string $current Action being shown.
	 */
	private static function print_nav_item( $action, $label, $current ) {
		$class = 'mepr-nav-item mepr-' . $action . ( $action === $current ? ' mepr-active-nav-tab' : '' );
		printf(
			'<span class="%1$s"><a href="%2$s" id="mepr-account-%3$s">%4$s</a></span> ',
			esc_attr( $class ),
			esc_url( add_query_arg( 'action', $action, self::account_url() ) ),
			esc_attr( $action ),
			esc_html( $label )
		);
	}

	/**
	 * Prints the member's transactions.
	 *
	 * @param int $user_id Member.
	 */
	private static function print_payments( $user_id ) {
		global $wpdb;
		$rows = $wpdb->get_results(
			$wpdb->prepare( "SELECT id, product_id, status, created_at FROM {$wpdb->prefix}mepr_transactions WHERE user_id = %d ORDER BY id", $user_id )
		);
		echo '<table class="cbe2e-payments"><tr><th>Transaction</th><th>Membership</th><th>Status</th><th>Date</th></tr>';
		foreach ( $rows as $row ) {
			printf(
				'<tr><td>%1$d</td><td>%2$s</td><td>%3$s</td><td>%4$s</td></tr>',
				(int) $row->id,
				esc_html( get_the_title( (int) $row->product_id ) ),
				esc_html( $row->status ),
				esc_html( $row->created_at )
			);
		}
		echo '</table>';
	}

	/**
	 * Appends a Buy button to a membership's page for logged-in users.
	 *
	 * @param string $content Post content.
	 * @return string
	 */
	public static function append_buy_form( $content ) {
		if ( ! is_singular( self::POST_TYPE ) || ! in_the_loop() ) {
			return $content;
		}
		if ( ! is_user_logged_in() ) {
			return $content . '<p><a href="' . esc_url( wp_login_url( get_permalink() ) ) . '">Log in to buy</a></p>';
		}
		$form  = '<form method="post" class="cbe2e-buy" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		$form .= '<input type="hidden" name="action" value="' . esc_attr( self::BUY_ACTION ) . '">';
		$form .= '<input type="hidden" name="membership" value="' . esc_attr( (string) get_the_ID() ) . '">';
		$form .= wp_nonce_field( self::BUY_ACTION, '_wpnonce', true, false );
		$form .= '<button type="submit" id="cbe2e-buy">Buy</button></form>';
		return $content . $form;
	}

	/**
	 * Handles the Buy button: records a complete payment and sends the webhook.
	 */
	public static function handle_buy() {
		check_admin_referer( self::BUY_ACTION );
		if ( ! is_user_logged_in() ) {
			wp_die( 'Log in to buy.', '', array( 'response' => 401 ) );
		}
		$membership = isset( $_POST['membership'] ) ? absint( $_POST['membership'] ) : 0;
		if ( self::POST_TYPE !== get_post_type( $membership ) ) {
			wp_die( 'Unknown membership.', '', array( 'response' => 400 ) );
		}
		self::buy( get_current_user_id(), $membership );
		wp_safe_redirect( self::account_url() );
		exit;
	}

	/**
	 * Records a complete lifetime payment and sends transaction-completed to bridge.
	 *
	 * @param int $user_id    Member.
	 * @param int $membership Membership post id.
	 * @return int Transaction id.
	 */
	public static function buy( $user_id, $membership ) {
		global $wpdb;
		$price = (string) get_post_meta( $membership, '_mepr_product_price', true );
		$wpdb->insert(
			$wpdb->prefix . 'mepr_transactions',
			array(
				'amount'     => $price,
				'total'      => $price,
				'user_id'    => $user_id,
				'product_id' => $membership,
				'trans_num'  => 'cbe2e-' . wp_generate_password( 12, false ),
				'status'     => 'complete',
				'txn_type'   => 'payment',
				'gateway'    => 'manual',
				'created_at' => gmdate( 'Y-m-d H:i:s' ),
				'expires_at' => self::LIFETIME,
			)
		);
		if ( ! $wpdb->insert_id ) {
			wp_die( esc_html( 'Could not record the transaction: ' . $wpdb->last_error ) );
		}
		$transaction = (int) $wpdb->insert_id;
		self::send_webhook( 'transaction-completed', $transaction );
		return $transaction;
	}

	/**
	 * Marks a transaction refunded and sends transaction-refunded to bridge.
	 *
	 * @param int $transaction Transaction id.
	 */
	public static function refund( $transaction ) {
		global $wpdb;
		$updated = $wpdb->update( $wpdb->prefix . 'mepr_transactions', array( 'status' => 'refunded' ), array( 'id' => $transaction ) );
		if ( 1 !== $updated ) {
			wp_die( esc_html( "Transaction $transaction was not found." ) );
		}
		self::send_webhook( 'transaction-refunded', $transaction );
	}

	/**
	 * Posts a Developer Tools webhook about a transaction and returns bridge's HTTP status.
	 *
	 * @param string $event       Event name, such as transaction-completed.
	 * @param int    $transaction Transaction id.
	 * @return int 0 when no response arrived.
	 */
	public static function send_webhook( $event, $transaction ) {
		$payload  = array(
			'event' => $event,
			'type'  => 'transaction',
			'data'  => self::transaction_data( $transaction ),
		);
		$response = wp_remote_post(
			(string) get_option( self::OPTION_WEBHOOK_URL ),
			array(
				'timeout' => 5,
				'headers' => array(
					'Content-Type'            => 'application/json',
					'MEMBERPRESS-WEBHOOK-KEY' => (string) get_option( self::OPTION_WEBHOOK_KEY ),
				),
				'body'    => wp_json_encode( $payload ),
			)
		);
		if ( is_wp_error( $response ) ) {
			error_log( "memberpress-standin: webhook $event for transaction $transaction failed: " . $response->get_error_message() ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
			return 0;
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		if ( 202 !== $status ) {
			error_log( "memberpress-standin: webhook $event for transaction $transaction returned HTTP $status: " . wp_remote_retrieve_body( $response ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
		}
		return $status;
	}

	/**
	 * Returns a transaction's webhook data, with mixed value types as MemberPress sends them.
	 *
	 * @param int $transaction Transaction id.
	 * @return array
	 */
	private static function transaction_data( $transaction ) {
		global $wpdb;
		$row        = $wpdb->get_row(
			$wpdb->prepare( "SELECT * FROM {$wpdb->prefix}mepr_transactions WHERE id = %d", $transaction ),
			ARRAY_A
		);
		$user       = get_userdata( (int) $row['user_id'] );
		$membership = get_post( (int) $row['product_id'] );
		return array(
			'membership'   => array(
				'id'          => (int) $membership->ID,
				'title'       => $membership->post_title,
				'status'      => $membership->post_status,
				'price'       => (string) get_post_meta( $membership->ID, '_mepr_product_price', true ),
				'period'      => '1',
				'period_type' => 'lifetime',
			),
			'member'       => array(
				'id'            => (int) $user->ID,
				'email'         => $user->user_email,
				'username'      => $user->user_login,
				'nicename'      => $user->user_nicename,
				'display_name'  => $user->display_name,
				'first_name'    => $user->first_name,
				'last_name'     => $user->last_name,
				'registered_at' => $user->user_registered,
			),
			'coupon'       => '0',
			'subscription' => '0',
			'id'           => (string) $row['id'],
			'amount'       => $row['amount'],
			'total'        => $row['total'],
			'trans_num'    => $row['trans_num'],
			'status'       => $row['status'],
			'txn_type'     => $row['txn_type'],
			'gateway'      => $row['gateway'],
			'created_at'   => $row['created_at'],
			'expires_at'   => $row['expires_at'],
			'response'     => null,
		);
	}
}

/**
 * The one MemberPress class that the coachbridge plugin calls, to find the account page URL.
 */
final class MeprOptions {

	/**
	 * Returns the options object, as MemberPress's MeprOptions::fetch() does.
	 *
	 * @return MeprOptions
	 */
	public static function fetch() {
		return new self();
	}

	/**
	 * Returns the account page URL.
	 *
	 * @return string
	 */
	public function account_page_url() {
		return Cbe2e_Memberpress::account_url();
	}
}

register_activation_hook( __FILE__, array( 'Cbe2e_Memberpress', 'activate' ) );
Cbe2e_Memberpress::register_hooks();

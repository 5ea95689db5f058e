<?php
/**
 * Settings → Coachbridge: the bridge URL and the shared secret.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Stores and edits the two settings the plugin needs to reach bridge.
 *
 * The secret can also come from the COACHBRIDGE_SHARED_SECRET constant in
 * wp-config.php, which then wins over the stored option. The form never prints
 * the stored secret, only its last four characters.
 */
final class Coachbridge_Settings {

	const OPTION_URL    = 'coachbridge_bridge_url';
	const OPTION_SECRET = 'coachbridge_shared_secret';
	const PAGE_SLUG     = 'coachbridge-settings';
	const ACTION        = 'coachbridge_save_settings';
	const CAPABILITY    = 'manage_options';

	// bridge rejects shorter secrets in api.secrets, so the plugin does too.
	const MIN_SECRET_LENGTH = 16;

	/**
	 * Registers the settings page and the handler of its form.
	 */
	public static function register_hooks() {
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_action( 'admin_post_' . self::ACTION, array( __CLASS__, 'handle_save' ) );
	}

	/**
	 * Adds Settings → Coachbridge for users who can manage options.
	 */
	public static function add_page() {
		add_options_page(
			__( 'Coachbridge', 'coachbridge' ),
			__( 'Coachbridge', 'coachbridge' ),
			self::CAPABILITY,
			self::PAGE_SLUG,
			array( __CLASS__, 'render_page' )
		);
	}

	/**
	 * Returns the bridge URL without a trailing slash, or '' when not set.
	 *
	 * @return string
	 */
	public static function bridge_url() {
		return untrailingslashit( (string) get_option( self::OPTION_URL, '' ) );
	}

	/**
	 * Returns the shared secret: the wp-config.php constant if defined, else the option.
	 *
	 * @return string
	 */
	public static function secret() {
		if ( self::secret_from_constant() ) {
			return (string) COACHBRIDGE_SHARED_SECRET;
		}
		return (string) get_option( self::OPTION_SECRET, '' );
	}

	/**
	 * Returns whether wp-config.php defines the secret.
	 *
	 * @return bool
	 */
	public static function secret_from_constant() {
		return defined( 'COACHBRIDGE_SHARED_SECRET' ) && '' !== (string) COACHBRIDGE_SHARED_SECRET;
	}

	/**
	 * Validates a bridge URL and returns it cleaned, or a WP_Error naming the problem.
	 *
	 * @param string $url URL as typed by the administrator.
	 * @return string|WP_Error
	 */
	public static function validate_url( $url ) {
		$url = trim( (string) $url );
		if ( '' === $url ) {
			return new WP_Error( 'coachbridge_invalid_url', __( 'Enter the bridge URL, for example http://127.0.0.1:8765.', 'coachbridge' ) );
		}
		$parts  = wp_parse_url( $url );
		$scheme = isset( $parts['scheme'] ) ? strtolower( $parts['scheme'] ) : '';
		if ( ! in_array( $scheme, array( 'http', 'https' ), true ) || empty( $parts['host'] ) ) {
			return new WP_Error( 'coachbridge_invalid_url', __( 'The bridge URL must start with http:// or https:// and name a host.', 'coachbridge' ) );
		}
		if ( isset( $parts['query'] ) || isset( $parts['fragment'] ) || isset( $parts['user'] ) ) {
			return new WP_Error( 'coachbridge_invalid_url', __( 'The bridge URL must not contain a query, a fragment or a user name.', 'coachbridge' ) );
		}
		return untrailingslashit( esc_url_raw( $url, array( 'http', 'https' ) ) );
	}

	/**
	 * Saves the form: nonce first, then capability, then each field.
	 *
	 * An empty secret field keeps the stored secret. The redirect carries a
	 * notice code that render_page() turns into a message.
	 */
	public static function handle_save() {
		check_admin_referer( self::ACTION );
		if ( ! current_user_can( self::CAPABILITY ) ) {
			wp_die( esc_html__( 'You are not allowed to change the Coachbridge settings.', 'coachbridge' ), '', array( 'response' => 403 ) );
		}

		$raw_url = isset( $_POST['coachbridge_bridge_url'] ) ? sanitize_text_field( wp_unslash( $_POST['coachbridge_bridge_url'] ) ) : '';
		// The secret is not run through sanitize_text_field(), which would change
		// characters such as < or %XX and so break the match with bridge.
		$raw_secret = isset( $_POST['coachbridge_shared_secret'] ) ? trim( wp_unslash( $_POST['coachbridge_shared_secret'] ) ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized

		$notice = self::save( $raw_url, $raw_secret );
		wp_safe_redirect(
			add_query_arg(
				array(
					'page'               => self::PAGE_SLUG,
					'coachbridge_notice' => $notice,
				),
				admin_url( 'options-general.php' )
			)
		);
		exit;
	}

	/**
	 * Validates and stores the submitted values and returns a notice code.
	 *
	 * Nothing is stored when a value is invalid.
	 *
	 * @param string $raw_url    Submitted bridge URL.
	 * @param string $raw_secret Submitted secret, or '' to keep the stored one.
	 * @return string One of saved, invalid_url, short_secret, invalid_secret.
	 */
	public static function save( $raw_url, $raw_secret ) {
		$url = self::validate_url( $raw_url );
		if ( is_wp_error( $url ) ) {
			return 'invalid_url';
		}
		if ( '' !== $raw_secret ) {
			if ( strlen( $raw_secret ) < self::MIN_SECRET_LENGTH ) {
				return 'short_secret';
			}
			if ( preg_match( '/[\x00-\x1f\x7f]/', $raw_secret ) ) {
				return 'invalid_secret';
			}
		}

		update_option( self::OPTION_URL, $url );
		if ( '' !== $raw_secret ) {
			// Not autoloaded: only requests to bridge need the secret.
			update_option( self::OPTION_SECRET, $raw_secret, false );
		}
		return 'saved';
	}

	/**
	 * Prints the settings page.
	 */
	public static function render_page() {
		if ( ! current_user_can( self::CAPABILITY ) ) {
			return;
		}
		$notice = isset( $_GET['coachbridge_notice'] ) ? sanitize_key( wp_unslash( $_GET['coachbridge_notice'] ) ) : ''; // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- only picks a message.
		?>
		<div class="wrap">
			<h1><?php esc_html_e( 'Coachbridge', 'coachbridge' ); ?></h1>
			<?php self::render_notice( $notice ); ?>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<input type="hidden" name="action" value="<?php echo esc_attr( self::ACTION ); ?>">
				<?php wp_nonce_field( self::ACTION ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="coachbridge_bridge_url"><?php esc_html_e( 'Bridge URL', 'coachbridge' ); ?></label></th>
						<td>
							<input type="url" class="regular-text" id="coachbridge_bridge_url" name="coachbridge_bridge_url" value="<?php echo esc_attr( self::bridge_url() ); ?>" placeholder="http://127.0.0.1:8765">
							<p class="description"><?php esc_html_e( 'Where the coachbridge service listens. Use https:// unless bridge runs on this server.', 'coachbridge' ); ?></p>
						</td>
					</tr>
					<tr>
						<th scope="row"><label for="coachbridge_shared_secret"><?php esc_html_e( 'Shared secret', 'coachbridge' ); ?></label></th>
						<td><?php self::render_secret_field(); ?></td>
					</tr>
				</table>
				<?php submit_button( __( 'Save settings', 'coachbridge' ) ); ?>
			</form>
		</div>
		<?php
	}

	/**
	 * Prints the secret field, which shows at most the last four characters.
	 */
	private static function render_secret_field() {
		if ( self::secret_from_constant() ) {
			echo '<p>' . esc_html__( 'Set by COACHBRIDGE_SHARED_SECRET in wp-config.php.', 'coachbridge' ) . '</p>';
			return;
		}
		$stored = (string) get_option( self::OPTION_SECRET, '' );
		echo '<input type="password" class="regular-text" id="coachbridge_shared_secret" name="coachbridge_shared_secret" value="" autocomplete="new-password">';
		echo '<p class="description">';
		if ( '' === $stored ) {
			esc_html_e( 'No secret is stored yet. Enter the value listed in bridge\'s api.secrets, at least 16 characters.', 'coachbridge' );
		} else {
			printf(
				/* translators: %s: the last four characters of the stored secret. */
				esc_html__( 'A secret ending in %s is stored. Leave the field empty to keep it.', 'coachbridge' ),
				'<code>' . esc_html( substr( $stored, -4 ) ) . '</code>'
			);
		}
		echo '</p>';
	}

	/**
	 * Prints the message for a notice code from handle_save().
	 *
	 * @param string $notice Notice code.
	 */
	private static function render_notice( $notice ) {
		$messages = array(
			'saved'          => array( 'success', __( 'Settings saved.', 'coachbridge' ) ),
			'invalid_url'    => array( 'error', __( 'Settings not saved: the bridge URL must start with http:// or https:// and must not contain a query or fragment.', 'coachbridge' ) ),
			'short_secret'   => array( 'error', __( 'Settings not saved: the shared secret must be at least 16 characters long.', 'coachbridge' ) ),
			'invalid_secret' => array( 'error', __( 'Settings not saved: the shared secret must not contain control characters.', 'coachbridge' ) ),
		);
		if ( ! isset( $messages[ $notice ] ) ) {
			return;
		}
		list( $type, $message ) = $messages[ $notice ];
		printf(
			'<div class="notice notice-%1$s"><p>%2$s</p></div>',
			esc_attr( $type ),
			esc_html( $message )
		);
	}
}

<?php
/**
 * Plugin Name:       Coachbridge
 * Description:       Adds a Coaching tab to the MemberPress account page and a Coaching admin menu. Both show pages served by the coachbridge service, reached through signed HTTP requests.
 * Version:           0.1.0
 * Requires at least: 6.0
 * Requires PHP:      7.4
 * Author:            Coachbridge
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       coachbridge
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

define( 'COACHBRIDGE_VERSION', '0.1.0' );
define( 'COACHBRIDGE_PLUGIN_FILE', __FILE__ );
define( 'COACHBRIDGE_PLUGIN_DIR', plugin_dir_path( __FILE__ ) );

require_once COACHBRIDGE_PLUGIN_DIR . 'includes/class-coachbridge-signer.php';
require_once COACHBRIDGE_PLUGIN_DIR . 'includes/class-coachbridge-settings.php';
require_once COACHBRIDGE_PLUGIN_DIR . 'includes/class-coachbridge-client.php';
require_once COACHBRIDGE_PLUGIN_DIR . 'includes/class-coachbridge-pages.php';
require_once COACHBRIDGE_PLUGIN_DIR . 'includes/class-coachbridge-account.php';
require_once COACHBRIDGE_PLUGIN_DIR . 'includes/class-coachbridge-proxy.php';
require_once COACHBRIDGE_PLUGIN_DIR . 'includes/class-coachbridge-admin.php';

/**
 * Registers the plugin's hooks once WordPress has loaded all plugins.
 */
function coachbridge_init() {
	Coachbridge_Settings::register_hooks();
	Coachbridge_Account::register_hooks();
	Coachbridge_Proxy::register_hooks();
	Coachbridge_Admin::register_hooks();
}
add_action( 'plugins_loaded', 'coachbridge_init' );

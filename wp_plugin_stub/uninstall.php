<?php
/**
 * Deletes the plugin's options when the plugin is deleted in wp-admin.
 *
 * bridge keeps its own data. Delete it there if the coaching data should go too.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;
defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

delete_option( 'coachbridge_bridge_url' );
delete_option( 'coachbridge_shared_secret' );

<?php
/**
 * Request signing, step for step the same as bridge/signing.py.
 *
 * The class uses plain PHP only, so the tests in tests/php/ run it without
 * WordPress. docs/signing.md in the coachbridge repository describes the scheme.
 *
 * @package Coachbridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Signs requests to bridge with HMAC-SHA256 over a canonical string.
 */
final class Coachbridge_Signer {

	const VERSION = 'v1';

	const HEADER_TIMESTAMP  = 'X-Coachbridge-Timestamp';
	const HEADER_REQUEST_ID = 'X-Coachbridge-Request-Id';
	const HEADER_USER       = 'X-Coachbridge-User';
	const HEADER_SIGNATURE  = 'X-Coachbridge-Signature';

	/**
	 * Signs a request and returns the four X-Coachbridge-* headers to send.
	 *
	 * @param string      $secret     Shared secret, also listed in bridge's api.secrets.
	 * @param string      $method     HTTP method.
	 * @param string      $path       Path relative to the bridge URL, such as /pages/client.
	 * @param array       $query      Query parameters: name => string, or name => list of strings.
	 * @param string      $body       Request body exactly as sent.
	 * @param int         $user_id    Acting WordPress user id, 0 for none.
	 * @param int|null    $timestamp  Unix seconds; defaults to the current time.
	 * @param string|null $request_id 16 to 64 of A-Z a-z 0-9 - _; defaults to a new random id.
	 * @return array<string, string> Header name => value.
	 */
	public static function sign( $secret, $method, $path, $query, $body, $user_id, $timestamp = null, $request_id = null ) {
		if ( null === $timestamp ) {
			$timestamp = time();
		}
		if ( null === $request_id ) {
			$request_id = self::new_request_id();
		}
		$canonical = self::canonical_string(
			$method,
			$path,
			self::canonical_query( self::query_pairs( $query ) ),
			$timestamp,
			$request_id,
			$user_id,
			$body
		);

		return array(
			self::HEADER_TIMESTAMP  => (string) $timestamp,
			self::HEADER_REQUEST_ID => $request_id,
			self::HEADER_USER       => (string) $user_id,
			self::HEADER_SIGNATURE  => self::VERSION . '=' . self::signature( $secret, $canonical ),
		);
	}

	/**
	 * Joins the signed parts of a request with newlines.
	 *
	 * @param string $method          HTTP method, upper-cased here.
	 * @param string $path            Path relative to the bridge URL.
	 * @param string $canonical_query Output of canonical_query().
	 * @param int    $timestamp       Unix seconds.
	 * @param string $request_id      Request id.
	 * @param int    $user_id         Acting WordPress user id, 0 for none.
	 * @param string $body            Request body exactly as sent.
	 * @return string
	 */
	public static function canonical_string( $method, $path, $canonical_query, $timestamp, $request_id, $user_id, $body ) {
		return implode(
			"\n",
			array(
				strtoupper( $method ),
				$path,
				$canonical_query,
				(string) $timestamp,
				$request_id,
				(string) $user_id,
				hash( 'sha256', (string) $body ),
			)
		);
	}

	/**
	 * Computes the lowercase hex HMAC-SHA256 of a canonical string.
	 *
	 * @param string $secret    Shared secret.
	 * @param string $canonical Output of canonical_string().
	 * @return string
	 */
	public static function signature( $secret, $canonical ) {
		return hash_hmac( 'sha256', $canonical, $secret );
	}

	/**
	 * Builds the canonical query from decoded pairs: encoded key=value, sorted, joined by &.
	 *
	 * Keys and values are encoded with rawurlencode(), which follows RFC 3986 and
	 * leaves only A-Z a-z 0-9 - . _ ~ unencoded. Pairs are sorted by key, then by
	 * value, comparing bytes.
	 *
	 * @param array<int, array{0: string, 1: string}> $pairs Decoded pairs.
	 * @return string
	 */
	public static function canonical_query( $pairs ) {
		$encoded = array();
		foreach ( $pairs as $pair ) {
			$encoded[] = array( rawurlencode( (string) $pair[0] ), rawurlencode( (string) $pair[1] ) );
		}
		usort( $encoded, array( __CLASS__, 'compare_pairs' ) );

		$parts = array();
		foreach ( $encoded as $pair ) {
			$parts[] = $pair[0] . '=' . $pair[1];
		}
		return implode( '&', $parts );
	}

	/**
	 * Parses a raw query string into decoded pairs the way bridge does.
	 *
	 * The string is split on & and each part on its first =. Empty parts are
	 * dropped, and a part without = becomes a key with an empty value. PHP's
	 * parse_str() is not used because it renames keys containing dots or
	 * brackets.
	 *
	 * @param string $raw Query string without the leading ?.
	 * @return array<int, array{0: string, 1: string}>
	 */
	public static function parse_query( $raw ) {
		$pairs = array();
		foreach ( explode( '&', (string) $raw ) as $part ) {
			if ( '' === $part ) {
				continue;
			}
			$halves  = explode( '=', $part, 2 );
			$pairs[] = array( urldecode( $halves[0] ), urldecode( isset( $halves[1] ) ? $halves[1] : '' ) );
		}
		return $pairs;
	}

	/**
	 * Turns query parameters into decoded pairs, one pair per value.
	 *
	 * @param array $query Name => string, or name => list of strings.
	 * @return array<int, array{0: string, 1: string}>
	 */
	public static function query_pairs( $query ) {
		$pairs = array();
		foreach ( (array) $query as $key => $value ) {
			foreach ( (array) $value as $item ) {
				$pairs[] = array( (string) $key, (string) $item );
			}
		}
		return $pairs;
	}

	/**
	 * Encodes query parameters for the URL in their canonical form.
	 *
	 * Sending the canonical form keeps the URL and the signed string identical,
	 * although bridge would also accept any other valid encoding.
	 *
	 * @param array $query Name => string, or name => list of strings.
	 * @return string Query string without the leading ?, or '' when empty.
	 */
	public static function build_query( $query ) {
		return self::canonical_query( self::query_pairs( $query ) );
	}

	/**
	 * Creates a random request id of 32 lowercase hex digits.
	 *
	 * @return string
	 */
	public static function new_request_id() {
		return bin2hex( random_bytes( 16 ) );
	}

	/**
	 * Compares two encoded pairs by key, then by value, as bytes.
	 *
	 * @param array{0: string, 1: string} $a First pair.
	 * @param array{0: string, 1: string} $b Second pair.
	 * @return int
	 */
	private static function compare_pairs( $a, $b ) {
		$by_key = strcmp( $a[0], $b[0] );
		return 0 !== $by_key ? $by_key : strcmp( $a[1], $b[1] );
	}
}

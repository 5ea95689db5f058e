/**
 * Sends ticks and messages from bridge's pages through a JSON proxy.
 *
 * bridge marks the controls in its HTML, and this script needs no other markup:
 *
 * - <input type="checkbox" data-coachbridge-path="/api/v1/..."> sends PUT to the
 *   path when checked and DELETE when unchecked.
 * - <form data-coachbridge-path="/api/v1/..." data-coachbridge-method="POST">
 *   sends its fields as a JSON object (method defaults to POST), or only the
 *   fields named in data-coachbridge-fields="a,b".
 * - data-coachbridge-reload on the control or its form reloads the page after a
 *   success, so that progress figures are redrawn by bridge.
 * - Elements with data-coachbridge-nojs are hidden, because with this script
 *   changes are saved at once and their plain-form buttons are not needed.
 * - The element with data-coachbridge-status in the control's form, or in its
 *   data-coachbridge-scope, announces success and failure (an aria-live
 *   region). Without one, a failure shows an alert.
 *
 * Settings come from window.coachbridgeSettings (wp_localize_script() in the
 * plugin) or from the JSON in a data-coachbridge-settings attribute (bridge's
 * preview): proxyUrl, nonce, nonceHeader (default X-WP-Nonce), savedMessage
 * and failedMessage. bridge/static/coachbridge.js is a byte-for-byte copy.
 */
( function () {
	'use strict';

	function readSettings() {
		if ( window.coachbridgeSettings ) {
			return window.coachbridgeSettings;
		}
		var holder = document.querySelector( '[data-coachbridge-settings]' );
		if ( ! holder ) {
			return null;
		}
		try {
			return JSON.parse( holder.getAttribute( 'data-coachbridge-settings' ) );
		} catch ( error ) {
			window.console.error( 'coachbridge: invalid data-coachbridge-settings', error );
			return null;
		}
	}

	var settings = readSettings();
	if ( ! settings ) {
		return;
	}

	function send( method, path, body ) {
		var headers = { 'Content-Type': 'application/json' };
		headers[ settings.nonceHeader || 'X-WP-Nonce' ] = settings.nonce;
		return window.fetch( settings.proxyUrl, {
			method: 'POST',
			credentials: 'same-origin',
			headers: headers,
			body: JSON.stringify( { method: method, path: path, body: body } )
		} ).then( function ( response ) {
			if ( ! response.ok ) {
				throw new Error( 'coachbridge proxy returned HTTP ' + response.status + ' for ' + method + ' ' + path );
			}
			return response;
		} );
	}

	function statusFor( element ) {
		var scope = element.closest( 'form, [data-coachbridge-scope]' );
		return scope ? scope.querySelector( '[data-coachbridge-status]' ) : null;
	}

	function labelOf( box ) {
		var label = box.id ? document.querySelector( 'label[for="' + box.id + '"]' ) : null;
		return label ? label.textContent.trim() : '';
	}

	function showSuccess( element, subject ) {
		var status = statusFor( element );
		if ( status ) {
			var saved = settings.savedMessage || 'Saved.';
			status.textContent = subject ? subject + ': ' + saved : saved;
		}
	}

	function showFailure( element, error ) {
		window.console.error( error );
		var status = statusFor( element );
		if ( status ) {
			status.textContent = settings.failedMessage;
		} else {
			window.alert( settings.failedMessage );
		}
	}

	function afterSuccess( element ) {
		if ( element.closest( '[data-coachbridge-reload]' ) ) {
			window.location.reload();
		}
	}

	function formBody( form ) {
		var fieldList = form.getAttribute( 'data-coachbridge-fields' );
		var names = fieldList ? fieldList.split( ',' ).map( function ( name ) {
			return name.trim();
		} ) : null;
		var body = {};
		new window.FormData( form ).forEach( function ( value, name ) {
			if ( ! names || names.indexOf( name ) !== -1 ) {
				body[ name ] = value;
			}
		} );
		return body;
	}

	Array.prototype.forEach.call( document.querySelectorAll( '[data-coachbridge-nojs]' ), function ( element ) {
		element.hidden = true;
	} );

	document.addEventListener( 'change', function ( event ) {
		var box = event.target;
		if ( ! box.matches( 'input[type="checkbox"][data-coachbridge-path]' ) ) {
			return;
		}
		var checked = box.checked;
		box.disabled = true;
		send( checked ? 'PUT' : 'DELETE', box.getAttribute( 'data-coachbridge-path' ), null )
			.then( function () {
				showSuccess( box, labelOf( box ) );
				afterSuccess( box );
			} )
			.catch( function ( error ) {
				box.checked = ! checked;
				showFailure( box, error );
			} )
			.then( function () {
				box.disabled = false;
				box.focus();
			} );
	} );

	document.addEventListener( 'submit', function ( event ) {
		var form = event.target;
		if ( ! form.matches( 'form[data-coachbridge-path]' ) ) {
			return;
		}
		event.preventDefault();
		var method = ( form.getAttribute( 'data-coachbridge-method' ) || 'POST' ).toUpperCase();
		send( method, form.getAttribute( 'data-coachbridge-path' ), formBody( form ) )
			.then( function () {
				form.reset();
				showSuccess( form, '' );
				afterSuccess( form );
			} )
			.catch( function ( error ) {
				showFailure( form, error );
			} );
	} );
}() );

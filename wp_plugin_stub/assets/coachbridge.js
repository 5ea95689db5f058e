/**
 * Sends ticks and messages from bridge's pages through the plugin's REST proxy.
 *
 * bridge marks the controls in its HTML, and this script needs no other markup:
 *
 * - <input type="checkbox" data-coachbridge-path="/api/v1/..."> sends PUT to the
 *   path when checked and DELETE when unchecked.
 * - <form data-coachbridge-path="/api/v1/..." data-coachbridge-method="POST">
 *   sends its fields as a JSON object (method defaults to POST).
 * - data-coachbridge-reload on the control or its form reloads the page after a
 *   success, so that progress figures are redrawn by bridge.
 *
 * The page's coachbridgeSettings object comes from wp_localize_script().
 */
( function () {
	'use strict';

	var settings = window.coachbridgeSettings;
	if ( ! settings ) {
		return;
	}

	function send( method, path, body ) {
		return window.fetch( settings.proxyUrl, {
			method: 'POST',
			credentials: 'same-origin',
			headers: {
				'Content-Type': 'application/json',
				'X-WP-Nonce': settings.nonce
			},
			body: JSON.stringify( { method: method, path: path, body: body } )
		} ).then( function ( response ) {
			if ( ! response.ok ) {
				throw new Error( 'coachbridge proxy returned HTTP ' + response.status + ' for ' + method + ' ' + path );
			}
			return response;
		} );
	}

	function showFailure( element, error ) {
		window.console.error( error );
		var status = element.closest( 'form, [data-coachbridge-scope]' );
		status = status ? status.querySelector( '[data-coachbridge-status]' ) : null;
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

	document.addEventListener( 'change', function ( event ) {
		var box = event.target;
		if ( ! box.matches( 'input[type="checkbox"][data-coachbridge-path]' ) ) {
			return;
		}
		var checked = box.checked;
		box.disabled = true;
		send( checked ? 'PUT' : 'DELETE', box.getAttribute( 'data-coachbridge-path' ), null )
			.then( function () {
				afterSuccess( box );
			} )
			.catch( function ( error ) {
				box.checked = ! checked;
				showFailure( box, error );
			} )
			.then( function () {
				box.disabled = false;
			} );
	} );

	document.addEventListener( 'submit', function ( event ) {
		var form = event.target;
		if ( ! form.matches( 'form[data-coachbridge-path]' ) ) {
			return;
		}
		event.preventDefault();
		var body = {};
		new window.FormData( form ).forEach( function ( value, name ) {
			body[ name ] = value;
		} );
		var method = ( form.getAttribute( 'data-coachbridge-method' ) || 'POST' ).toUpperCase();
		send( method, form.getAttribute( 'data-coachbridge-path' ), body )
			.then( function () {
				form.reset();
				afterSuccess( form );
			} )
			.catch( function ( error ) {
				showFailure( form, error );
			} );
	} );
}() );

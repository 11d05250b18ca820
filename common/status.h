/*
 * status.h: the wire status codes (proto/PROTOCOL.md §Status codes).
 *
 * One table shared by the codec, the engine and the server, so that a code
 * means the same thing everywhere. Values are part of the protocol: never
 * renumber, only append.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_STATUS_H
#define CHAND_STATUS_H

enum status {
	STATUS_OK = 0,
	STATUS_CLOSED = 1,		/* send on / close of a closed channel */
	STATUS_DEADLINE_EXCEEDED = 2,	/* the wait budget ran out */
	STATUS_CANCELED = 3,		/* CANCEL, or the client went away */
	STATUS_NOT_FOUND = 4,		/* no such channel or request */
	STATUS_EXISTS = 5,		/* MAKE with a different capacity */
	STATUS_PERMISSION_DENIED = 6,
	STATUS_BAD_REQUEST = 7,		/* well-formed frame, invalid request */
	STATUS_LIMIT = 8,		/* a configured limit was hit */
	STATUS_PROTOCOL = 9,		/* malformed frame: the connection closes */
	STATUS_SHUTTING_DOWN = 10,
	STATUS_STARTED = 11,		/* a link is running: the interim reply (PROTOCOL.md §12) */
	STATUS_MOVED = 12,		/* cluster: owned by another node; the reply holds its address (§17) */
	STATUS_UNAVAILABLE = 13,	/* cluster: cannot be served here now (§17) */
	STATUS_STORAGE = 14,		/* durable channels: the journal cannot be written (§16) */
};
#define STATUS_MAX STATUS_STORAGE

/* "OK", "CLOSED", ...; "UNKNOWN" for a code outside the table. Never NULL. */
const char *status_name(int status);

#endif

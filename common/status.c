/* SPDX-License-Identifier: BSD-2-Clause */
#include "status.h"

static const char *const status_names[] = {
	[STATUS_OK] = "OK",
	[STATUS_CLOSED] = "CLOSED",
	[STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
	[STATUS_CANCELED] = "CANCELED",
	[STATUS_NOT_FOUND] = "NOT_FOUND",
	[STATUS_EXISTS] = "EXISTS",
	[STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
	[STATUS_BAD_REQUEST] = "BAD_REQUEST",
	[STATUS_LIMIT] = "LIMIT",
	[STATUS_PROTOCOL] = "PROTOCOL",
	[STATUS_SHUTTING_DOWN] = "SHUTTING_DOWN",
	[STATUS_STARTED] = "STARTED",
	[STATUS_MOVED] = "MOVED",
	[STATUS_UNAVAILABLE] = "UNAVAILABLE",
	[STATUS_STORAGE] = "STORAGE",
};

const char *
status_name(int status)
{
	if (status < 0 || status > STATUS_MAX)
		return "UNKNOWN";
	return status_names[status];
}

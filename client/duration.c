/* SPDX-License-Identifier: BSD-2-Clause */
#include <ctype.h>
#include <string.h>

#include "duration.h"

static const struct {
	const char *unit;
	double ns;
} units[] = {
	/* longest first, so "ms" is not read as "m" */
	{ "ns", 1 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "ms", 1e6 },
	{ "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
};

int
parse_duration(const char *s, int64_t *ns)
{
	double total = 0;

	if (s == NULL || *s == '\0')
		return -1;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	while (*s) {
		double v = 0, scale = 1;
		int digits = 0;
		size_t best = 0, k;

		for (; isdigit((unsigned char)*s); s++, digits++)
			v = v * 10 + (*s - '0');
		if (*s == '.')
			for (s++; isdigit((unsigned char)*s); s++, digits++)
				v += (*s - '0') * (scale /= 10);
		if (digits == 0)
			return -1;
		for (k = 0; k < sizeof units / sizeof units[0]; k++) {
			size_t ul = strlen(units[k].unit);

			if (strncmp(s, units[k].unit, ul) == 0 && ul > best &&
			    !(ul == 1 && s[0] == 'm' && s[1] == 's'))
				best = ul;
		}
		for (k = 0; k < sizeof units / sizeof units[0]; k++)
			if (strlen(units[k].unit) == best && strncmp(s, units[k].unit, best) == 0)
				break;
		if (best == 0)
			return -1;
		total += v * units[k].ns;
		s += best;
	}
	if (total > 9.2e18)
		return -1;
	*ns = (int64_t)total;
	return 0;
}

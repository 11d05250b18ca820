/*
 * auth.c: tokens and rules. Tokens are never stored, only their SHA-256
 * digests; a presented token is hashed and compared against every digest
 * in constant time. Rules are few and matched in order with fnmatch(3).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"
#include "log.h"

struct token {
	char name[AUTH_NAME_MAX];
	uint8_t digest[AUTH_DIGEST_LEN];
};

struct rule {
	char ident[AUTH_NAME_MAX];	/* "*": every identity */
	char *pattern;			/* fnmatch(3) glob over channel names; "": none (admin only) */
	unsigned rights;
};

struct auth {
	bool enabled;
	struct token *tokens;
	size_t ntokens;
	struct rule *rules;
	size_t nrules;
};

static const char *const right_names[] = { "send", "recv", "close", "make", "delete", "admin" };

const char *
auth_right_name(unsigned right)
{
	for (unsigned i = 0; i < 6; i++)
		if (right == 1u << i)
			return right_names[i];
	return "?";
}

static int
failf(char **cause, const char *origin, const char *what, const char *detail)
{
	if (asprintf(cause, "%s: %s%s%s", origin, what, detail ? ": " : "", detail ? detail : "") < 0)
		*cause = NULL;
	return -1;
}

static int
hex_nibble(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* "NAME:HEX64" (checked by config.c's check_token, or here for the file). */
static int
add_token(struct auth *a, const char *v, const char *origin, char **cause)
{
	const char *colon = strrchr(v, ':');
	struct token *t;
	size_t nl;

	if (colon == NULL || colon == v || (nl = (size_t)(colon - v)) >= AUTH_NAME_MAX ||
	    strlen(colon + 1) != 2 * AUTH_DIGEST_LEN)
		return failf(cause, origin, "key 'token': must be NAME:SHA256HEX", v);
	for (const char *p = colon + 1; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return failf(cause, origin, "key 'token': the digest must be 64 hex digits", v);
	if ((t = realloc(a->tokens, (a->ntokens + 1) * sizeof *t)) == NULL)
		return failf(cause, origin, "out of memory", NULL);
	a->tokens = t;
	t += a->ntokens++;
	memcpy(t->name, v, nl);
	t->name[nl] = '\0';
	for (size_t i = 0; i < AUTH_DIGEST_LEN; i++)
		t->digest[i] = (uint8_t)(hex_nibble((unsigned char)colon[1 + 2 * i]) << 4 |
		    hex_nibble((unsigned char)colon[2 + 2 * i]));
	return 0;
}

static int
load_tokens_file(struct auth *a, const char *path, char **cause)
{
	FILE *f = fopen(path, "r");
	char line[512], origin[512];
	unsigned lineno = 0;
	int rc = 0;

	if (f == NULL)
		return failf(cause, path, "key 'tokens_file': cannot open", strerror(errno));
	while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
		char *p = line, *e;

		lineno++;
		if ((e = strchr(p, '#')) != NULL)
			*e = '\0';
		while (isspace((unsigned char)*p))
			p++;
		e = p + strlen(p);
		while (e > p && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*p == '\0')
			continue;
		snprintf(origin, sizeof origin, "%s:%u", path, lineno);
		rc = add_token(a, p, origin, cause);
	}
	fclose(f);
	return rc;
}

/* Rights from "send,recv,...": *used_all says whether the word `all` was among them. */
static int
parse_rights(const char *s, unsigned *out, bool *used_all)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof buf, "%s", s);
	*out = 0;
	*used_all = false;
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		unsigned i;

		if (strcmp(tok, "all") == 0) {
			*out |= RIGHT_ALL;
			*used_all = true;
			continue;
		}
		for (i = 0; i < 6 && strcmp(tok, right_names[i]) != 0; i++)
			;
		if (i == 6)
			return -1;
		*out |= 1u << i;
	}
	return *out ? 0 : -1;
}

/*
 * allow = NAME PATTERN RIGHTS, or allow = NAME admin (no pattern). admin is
 * server-wide, so a rule that scopes it to a pattern would read as narrower
 * than it is: only the pattern "*" may carry it.
 */
static int
add_rule(struct auth *a, const char *v, const char *origin, char **cause)
{
	char ident[128], pattern[512], rights[256];
	bool used_all;
	struct rule *r;
	int n = sscanf(v, "%127s %511s %255s", ident, pattern, rights);

	if (n == 2 && strcmp(pattern, "admin") == 0) {
		snprintf(rights, sizeof rights, "admin");
		pattern[0] = '\0';
	} else if (n != 3)
		return failf(cause, origin, "key 'allow': must be NAME PATTERN RIGHT[,RIGHT...] or NAME admin", v);
	if (strlen(ident) >= AUTH_NAME_MAX)
		return failf(cause, origin, "key 'allow': identity name longer than 63 bytes", ident);
	if ((r = realloc(a->rules, (a->nrules + 1) * sizeof *r)) == NULL)
		return failf(cause, origin, "out of memory", NULL);
	a->rules = r;
	r += a->nrules;
	if (parse_rights(rights, &r->rights, &used_all) < 0)
		return failf(cause, origin, "key 'allow': rights are send, recv, close, make, delete, "
		    "admin or all, separated by commas", rights);
	if ((r->rights & RIGHT_ADMIN) && pattern[0] != '\0' && strcmp(pattern, "*") != 0)
		return failf(cause, origin, "key 'allow': admin is a server-wide right: grant it with the "
		    "pattern '*' or as 'allow = NAME admin'", v);
	if (used_all && !(r->rights & RIGHT_ADMIN))
		log_warn("config-changed origin=%s rule=\"%s\" note=\"'all' no longer grants admin; "
		    "add 'allow = %s admin' if this identity administers the server\"", origin, v, ident);
	if ((r->pattern = strdup(pattern)) == NULL)
		return failf(cause, origin, "out of memory", NULL);
	snprintf(r->ident, sizeof r->ident, "%s", ident);
	a->nrules++;
	return 0;
}

int
auth_new(struct auth **out, const struct config *cfg, char **cause)
{
	struct auth *a = calloc(1, sizeof *a);

	*cause = NULL;
	if (a == NULL)
		return failf(cause, "auth", "out of memory", NULL);
	a->enabled = config_auth_enabled(cfg);
	for (size_t i = 0; i < cfg->tokens.n; i++)
		if (add_token(a, cfg->tokens.items[i].value, cfg->tokens.items[i].origin, cause) < 0)
			goto fail;
	if (cfg->tokens_file[0] != '\0' && load_tokens_file(a, cfg->tokens_file, cause) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->allow.n; i++)
		if (add_rule(a, cfg->allow.items[i].value, cfg->allow.items[i].origin, cause) < 0)
			goto fail;
	*out = a;
	return 0;
fail:
	auth_free(a);
	return -1;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->nrules; i++)
		free(a->rules[i].pattern);
	free(a->rules);
	OPENSSL_cleanse(a->tokens, a->ntokens * sizeof *a->tokens);
	free(a->tokens);
	free(a);
}

bool
auth_enabled(const struct auth *a)
{
	return a->enabled;
}

bool
auth_token(const struct auth *a, const char *token, size_t len, char *name,
    uint8_t digest[AUTH_DIGEST_LEN])
{
	unsigned int dl = AUTH_DIGEST_LEN;
	size_t found = a->ntokens;

	if (EVP_Digest(token, len, digest, &dl, EVP_sha256(), NULL) != 1)
		return false;
	/* no early exit: the time taken does not depend on which digest matches */
	for (size_t i = 0; i < a->ntokens; i++)
		if (CRYPTO_memcmp(digest, a->tokens[i].digest, AUTH_DIGEST_LEN) == 0 && found == a->ntokens)
			found = i;
	if (found == a->ntokens)
		return false;
	snprintf(name, AUTH_NAME_MAX, "%s", a->tokens[found].name);
	return true;
}

bool
auth_digest_names(const struct auth *a, const uint8_t digest[AUTH_DIGEST_LEN], const char *name)
{
	bool ok = false;

	for (size_t i = 0; i < a->ntokens; i++)
		if (CRYPTO_memcmp(digest, a->tokens[i].digest, AUTH_DIGEST_LEN) == 0 &&
		    strcmp(a->tokens[i].name, name) == 0)
			ok = true;
	return ok;
}

static bool
rule_applies(const struct rule *r, const char *ident)
{
	return strcmp(r->ident, "*") == 0 || strcmp(r->ident, ident) == 0;
}

unsigned
auth_rights(const struct auth *a, const char *ident, const char *chan, size_t len)
{
	char name[256];
	unsigned rights = 0;

	if (!a->enabled)
		return RIGHT_ALL;
	if (ident == NULL || ident[0] == '\0' || len >= sizeof name)
		return 0;
	/* channel names hold no NUL (PROTOCOL.md §6) */
	memcpy(name, chan, len);
	name[len] = '\0';
	for (size_t i = 0; i < a->nrules; i++)
		if (rule_applies(&a->rules[i], ident) && a->rules[i].pattern[0] != '\0' &&
		    fnmatch(a->rules[i].pattern, name, 0) == 0)
			rights |= a->rules[i].rights;
	return rights & RIGHT_ALL;	/* admin is no right on a channel */
}

bool
auth_admin(const struct auth *a, const char *ident)
{
	if (!a->enabled)
		return true;
	if (ident == NULL || ident[0] == '\0')
		return false;
	for (size_t i = 0; i < a->nrules; i++)
		if (rule_applies(&a->rules[i], ident) && (a->rules[i].rights & RIGHT_ADMIN))
			return true;
	return false;
}

/*
 * replay.c: a main() for a libFuzzer harness without libFuzzer. It runs the
 * harness's LLVMFuzzerTestOneInput once on each input, so that make check
 * replays the seed corpus (tests/fuzz/corpus/, with the inputs past fuzzing
 * runs found) through every harness, built by the tree's own compiler and
 * sanitizers (tests/fuzz_replay.sh). A harness's failed check traps, as
 * under libFuzzer; ASan and LeakSanitizer report what they find.
 *
 *   fuzz_HARNESS PATH...	a file, or a directory's regular files
 *				(not recursively), in name order
 *
 * Makefile.am links it into every harness of a build without
 * --enable-fuzzing; a fuzzing build links libFuzzer's main instead.
 *
 * Prints "replayed N inputs"; exits 1 when a path cannot be read, or when
 * no input was found at all (a seed directory left out of the dist).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run the harness on one file's bytes: 0, or -1 when it cannot be read. */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;
	int rc = -1;

	errno = 0;
	if (f == NULL)
		goto fail;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto fail;
	/* never NULL, as libFuzzer's data, even for an empty input */
	if ((buf = malloc((size_t)size + 1)) == NULL)
		goto fail;
	if (fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto fail;
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	rc = 0;
fail:
	if (rc < 0)
		fprintf(stderr, "replay: %s: %s\n", path, errno ? strerror(errno) : "short read");
	free(buf);
	if (f != NULL)
		fclose(f);
	return rc;
}

/* Every regular file of dir, in name order; the count replayed, or -1. */
static long
replay_dir(const char *dir)
{
	struct dirent **names;
	long n = 0;
	int count = scandir(dir, &names, NULL, alphasort);

	if (count < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < count; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
		if (n >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			n = replay_file(path) < 0 ? -1 : n + 1;
		free(names[i]);
	}
	free(names);
	return n;
}

int
main(int argc, char **argv)
{
	long total = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		long n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]) < 0 ? -1 : 1;
		if (n < 0)
			return 1;
		total += n;
	}
	printf("replayed %ld inputs\n", total);
	return total > 0 ? 0 : 1;
}

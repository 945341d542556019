/* Identity files: written whole or not at all, with their modes. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringside/tls.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/rs-tls-file-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The names in dir, joined by spaces in sorted order. */
static void listing(char *out, size_t size)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' || strlen(names[i]->d_name) > 2)
			if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
				o += (size_t)snprintf(out + o, size - o, "%s%s", o ? " " : "",
				                      names[i]->d_name);
		free(names[i]);
	}
	free(names);
}

static void test_write_modes(void **state)
{
	char path[128], *buf, names[256];
	struct stat st;
	size_t len;
	mode_t old = umask(0);

	(void)state;
	assert_int_equal(rs_tls_write_file(dir, "key.pem", "secret", 6, 0600, 0), 0);
	assert_int_equal(rs_tls_write_file(dir, "cert.pem", "public", 6, 0644, 0), 0);
	umask(old);
	snprintf(path, sizeof path, "%s/key.pem", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(path, sizeof path, "%s/cert.pem", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(rs_tls_read_file(path, 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "public");
	free(buf);
	/* No temporary file is left. */
	listing(names, sizeof names);
	assert_string_equal(names, "cert.pem key.pem");
}

static void test_replace(void **state)
{
	char path[128], *buf;
	struct stat before, after;
	size_t len;

	(void)state;
	snprintf(path, sizeof path, "%s/f", dir);
	assert_int_equal(rs_tls_write_file(dir, "f", "one", 3, 0644, 0), 0);
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(rs_tls_write_file(dir, "f", "two!", 4, 0644, 0), 0);
	assert_int_equal(stat(path, &after), 0);
	/* A new inode renamed over the old: an open reader keeps the old. */
	assert_int_not_equal(before.st_ino, after.st_ino);
	assert_int_equal(rs_tls_read_file(path, 100, &buf, &len), 0);
	assert_string_equal(buf, "two!");
	free(buf);

	assert_int_equal(rs_tls_write_file(dir, "f", "three", 5, 0644, RS_WRITE_NO_REPLACE),
	                 -EEXIST);
	assert_int_equal(rs_tls_read_file(path, 100, &buf, &len), 0);
	assert_string_equal(buf, "two!");
	free(buf);
	assert_int_equal(rs_tls_write_file(dir, "g", "new", 3, 0600, RS_WRITE_NO_REPLACE), 0);
}

static void test_errors(void **state)
{
	char path[128], *buf, names[256];
	size_t len;

	(void)state;
	assert_int_equal(rs_tls_write_file("/nonexistent/dir", "f", "x", 1, 0644, 0), -ENOENT);
	assert_int_equal(rs_tls_write_file(dir, "a/b", "x", 1, 0644, 0), -EINVAL);
	assert_int_equal(rs_tls_write_file(dir, "", "x", 1, 0644, 0), -EINVAL);
	/* A directory in the way: the rename fails and the temporary goes. */
	snprintf(path, sizeof path, "%s/sub", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(rs_tls_write_file(dir, "sub", "x", 1, 0644, 0), -EISDIR);
	listing(names, sizeof names);
	assert_string_equal(names, "sub");

	assert_int_equal(rs_tls_write_file(dir, "big", "0123456789", 10, 0644, 0), 0);
	snprintf(path, sizeof path, "%s/big", dir);
	assert_int_equal(rs_tls_read_file(path, 9, &buf, &len), -EFBIG);
	assert_int_equal(rs_tls_read_file(path, 10, &buf, &len), 0);
	assert_int_equal(len, 10);
	free(buf);
	snprintf(path, sizeof path, "%s/missing", dir);
	assert_int_equal(rs_tls_read_file(path, 10, &buf, &len), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_write_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

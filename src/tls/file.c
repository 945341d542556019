/* Identity files written so that a proxy watching the directory never reads
 * half of one, and read back whole. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ringside/tls.h"

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the rename itself durable: the directory entry lives in dir. */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL) /* EINVAL: a file system without directory sync */
		ret = -errno;
	close(fd);
	return ret;
}

/* Puts tmp in place of path unless path exists: renameat2's RENAME_NOREPLACE
 * decides atomically; where the file system lacks it, link() does, as it
 * fails on an existing name too. */
static int publish_no_replace(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (link(tmp, path) < 0)
		return -errno;
	unlink(tmp);
	return 0;
}

int rs_tls_write_file(const char *dir, const char *name, const void *buf, size_t len, mode_t mode,
                      unsigned flags)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd, ret;

	if (strchr(name, '/') || !*name)
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path ||
	    (size_t)snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= sizeof tmp)
		return -ENAMETOOLONG;
	/* mkostemp creates the file 0600 whatever the umask, so a key is never
	 * readable by others, not even before fchmod. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = fchmod(fd, mode) < 0 ? -errno : 0;
	if (ret == 0)
		ret = write_all(fd, buf, len);
	/* The data must be on disk before the name points at it, or a crash
	 * could leave an empty file under the final name. */
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0) {
		if (flags & RS_WRITE_NO_REPLACE)
			ret = publish_no_replace(tmp, path);
		else if (rename(tmp, path) < 0)
			ret = -errno;
	}
	if (ret < 0) {
		unlink(tmp);
		return ret;
	}
	return sync_dir(dir);
}

/* Grows b (cap bytes, n used) to twice its size. The old block is zeroed
 * before it is freed: the file may be a private key. */
static char *grow(char *b, size_t n, size_t *cap)
{
	size_t ncap = b ? *cap * 2 : *cap;
	char *nb = malloc(ncap);

	if (!nb)
		return NULL;
	if (b) {
		memcpy(nb, b, n);
		rs_tls_free_secret(b, *cap);
	}
	*cap = ncap;
	return nb;
}

int rs_tls_read_file(const char *path, size_t max, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = NULL;
	struct stat st;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size < max)
		cap = (size_t)st.st_size + 2; /* room for the NUL and the read that sees the end */
	for (;;) {
		ssize_t r;

		if (!b || n + 1 >= cap) {
			char *nb = grow(b, n, &cap);

			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			ret = -EFBIG;
			break;
		}
	}
	close(fd);
	if (ret < 0) {
		rs_tls_free_secret(b, b ? cap : 0);
		return ret;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

void rs_tls_free_secret(void *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	free(p);
}

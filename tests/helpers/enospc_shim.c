/* A full disk for some files: write(), pwrite() and pwrite64() to a file whose path starts
 * with $ENOSPC_UNDER and ends with one of the ':'-separated $ENOSPC_SUFFIXES fail with
 * ENOSPC once they would reach past $ENOSPC_AFTER_BYTES bytes into the file. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int matches(const char *path, size_t n, const char *suffixes) {
    char list[1024];
    snprintf(list, sizeof list, "%s", suffixes);
    for (char *s = strtok(list, ":"); s != NULL; s = strtok(NULL, ":")) {
        size_t len = strlen(s);
        if (len <= n && strcmp(path + n - len, s) == 0) return 1;
    }
    return 0;
}

static int full(int fd, size_t count, long long offset) {
    const char *under = getenv("ENOSPC_UNDER");
    const char *suffixes = getenv("ENOSPC_SUFFIXES");
    const char *after = getenv("ENOSPC_AFTER_BYTES");
    char link[64], path[4096];
    if (under == NULL || suffixes == NULL || after == NULL || count == 0) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    if (strncmp(path, under, strlen(under)) != 0 || !matches(path, (size_t)n, suffixes)) return 0;
    if (offset < 0) offset = lseek(fd, 0, SEEK_CUR);
    return (offset < 0 ? 0 : offset) + (long long)count > atoll(after);
}

#define SHIM(name, params, args, offset)                                        \
    ssize_t name params {                                                       \
        static ssize_t (*real) params;                                          \
        if (!real) real = (ssize_t (*) params)dlsym(RTLD_NEXT, #name);          \
        if (full(fd, count, offset)) { errno = ENOSPC; return -1; }             \
        return real args;                                                       \
    }

SHIM(write, (int fd, const void *buf, size_t count), (fd, buf, count), -1)
SHIM(pwrite, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off), off)
SHIM(pwrite64, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off), off)

/*
 * /usr/bin/loki in the Loki STAND-IN image (tests/images/loki-standin).
 *
 * The upstream grafana/loki 3.x image is distroless: the loki binary is the only
 * program in it, with no shell to run a "#!/bin/sh" wrapper. The stand-in keeps that
 * shape: this static launcher (built by tests/images/build.sh with `gcc -static`, so it
 * needs no libc in the image) replaces itself with
 *
 *     /usr/bin/python3 /usr/share/standin/standin.py --role loki <its own arguments...>
 *
 * so `docker run IMAGE -verify-config -config.file=F` and the compose `command:` reach
 * the stand-in exactly as they would reach Loki. Nothing else may be added here: any
 * behaviour belongs in standin.py, where UPSTREAM.md documents it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const prefix[] = {
    "/usr/bin/python3", "/usr/share/standin/standin.py", "--role", "loki",
};
#define NPREFIX (sizeof prefix / sizeof prefix[0])

int main(int argc, char **argv) {
    char **args = calloc(NPREFIX + (size_t)argc, sizeof *args);
    if (args == NULL) {
        fputs("loki stand-in launcher: out of memory\n", stderr);
        return 127;
    }
    for (size_t i = 0; i < NPREFIX; i++)
        args[i] = (char *)prefix[i];
    for (int i = 1; i < argc; i++)
        args[NPREFIX + (size_t)i - 1] = argv[i];
    /* args[NPREFIX + argc - 1] is already NULL (calloc). */
    execv(args[0], args);
    fprintf(stderr, "loki stand-in launcher: cannot exec %s: %s\n", args[0], strerror(errno));
    return 127;
}

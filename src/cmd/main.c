/* ringside's command line: `proxy`, `validate`, `ca`, `version`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ringside/build-info.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ringside COMMAND [ARGS]\n"
		   "\n"
		   "commands:\n"
		   "  proxy      run the sidecar proxy (see `ringside proxy --help`)\n"
		   "  validate   check Istio YAML files and directories\n"
		   "  ca         the mesh certificate authority: `ca init` makes the root,\n"
		   "             `ca issue` a workload certificate with its SPIFFE ID,\n"
		   "             `ca show` prints certificates (see `ringside ca --help`)\n"
		   "  version    print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "proxy") == 0)
		return rs_cmd_proxy(argc - 1, argv + 1);
	if (strcmp(argv[1], "validate") == 0)
		return rs_cmd_validate(argc - 1, argv + 1);
	if (strcmp(argv[1], "ca") == 0)
		return rs_cmd_ca(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("ringside %s\nwolfSSL: %s\n", RINGSIDE_VERSION, RS_WOLFSSL_DESC);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "ringside: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

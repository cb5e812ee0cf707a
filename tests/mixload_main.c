/*
 * mixload: the mixed-traffic driver of tests/mixload.h as a program, for
 * bench/valgrind.sh (and by hand against any odsd with the demo data):
 *
 *   mixload --port P --secret-file F --db URI [--requests N] [--threads T] [--seed S]
 *
 * Prints the summary; exits 0 when every answer was expected, 1 when not,
 * 2 on a usage error.
 */
#include "autoconfig.h"

#include "mixload.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
	                                         {"secret-file", required_argument, NULL, 's'},
	                                         {"db", required_argument, NULL, 'd'},
	                                         {"requests", required_argument, NULL, 'n'},
	                                         {"threads", required_argument, NULL, 't'},
	                                         {"seed", required_argument, NULL, 'r'},
	                                         {NULL, 0, NULL, 0}};
	struct mixload_opts o = {0};
	struct mixload_report rep;
	char err[512];
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.port = atoi(optarg);
			break;
		case 's':
			o.secret_file = optarg;
			break;
		case 'd':
			o.db_uri = optarg;
			break;
		case 'n':
			o.requests = atoi(optarg);
			break;
		case 't':
			o.threads = atoi(optarg);
			break;
		case 'r':
			o.seed = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (o.port <= 0 || !o.secret_file || !o.db_uri) {
		fprintf(stderr, "usage: mixload --port P --secret-file F --db URI [--requests N]"
		                " [--threads T] [--seed S]\n");
		return 2;
	}
	if (!mixload_run(&o, &rep, err, sizeof(err))) {
		fprintf(stderr, "mixload: %s\n", err);
		return 1;
	}
	mixload_print(&rep, stdout);
	return rep.unexpected == 0 && rep.status[500] == 0 ? 0 : 1;
}

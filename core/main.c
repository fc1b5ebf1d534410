/*
 * main.c -- start-up, signals and log draining: the control thread.
 *
 * Reads the configuration (embedded defaults < -c FILE < command-line
 * options), builds one shard per CPU, starts their threads, and then
 * becomes the control thread: it waits for signals on a signalfd and
 * copies the shards' and the zone loader's log lines to stdout. SIGHUP
 * reloads the zone file (core/server/zonectl). SIGTERM/SIGINT ask every
 * shard to drain (stop accepting, finish transactions in DATA up to
 * shutdown-timeout, 421 to idle sessions); the process exits 0 once all
 * shards have stopped. The only place with exit().
 *
 * Like --lookup for zones, --srs-forward and --srs-reverse run one SRS
 * rewrite (auth/srs) at the current time and exit, so the SRS addresses can
 * be checked against other implementations from a shell.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "auth/srs.h"
#include "core/check.h"
#include "core/config.h"
#include "core/dedup.h"
#include "core/err.h"
#include "core/jlog.h"
#include "core/server/shard.h"
#include "core/server/zonectl.h"
#include "core/tls.h"
#include "route/zone.h"

#define MAIN_POLL_MS 50 /* log latency: how often the control thread drains */

_Static_assert(CONFIG_MAX_SRS_MAX_AGE == SRS_MAX_MAX_AGE, "srs-max-age range != auth/srs");

static void
usage(FILE *f)
{
	fprintf(f, "usage: sluice [-c FILE] [--listen ADDR:PORT]... [--shards N]\n"
		   "              [--upstream HOST:PORT] [--hostname NAME] [--set KEY=VALUE]...\n"
		   "              [--zones FILE] [--check-config [-v]] [--lookup ADDRESS]\n"
		   "              [--dns ADDR[:PORT]]... [--mx-port N]\n"
		   "              [--tls-policy verify|opportunistic|none] [--ca-file FILE]\n"
		   "              [--srs-domain DOMAIN --srs-secret FILE]\n"
		   "              [--srs-forward ADDRESS | --srs-reverse ADDRESS]\n"
		   "Without -c, the embedded default applies: listen 127.0.0.1:2525,\n"
		   "relay to 127.0.0.1:2526. --upstream none delivers to each destination's\n"
		   "MX instead. Every config key can be set with --set.\n");
}

/* Config errors already read "FILE:LINE: reason"; print them as they are. */
static void
die_config(const char *err)
{
	fprintf(stderr, "%s\n", err);
	exit(1);
}

/* Apply one command-line override as a config key. */
static void
override(struct config *cfg, const char *key, const char *value, const char *opt)
{
	char err[512];

	if (config_set(cfg, key, value, opt, err, sizeof(err)) < 0)
		die_config(err);
}

static void
log_event(const char *event, const struct config *cfg, unsigned nshards)
{
	char buf[2048], listen[CONFIG_MAX_LISTEN * sizeof(cfg->listen[0].text)];
	struct jlog j;
	size_t n, len = 0;

	for (unsigned i = 0; i < cfg->nlisten; i++) {
		size_t k = strlen(cfg->listen[i].text) + 1;

		memcpy(listen + len, cfg->listen[i].text, k);
		len += k;
	}
	jlog_begin(&j, buf, sizeof(buf), event);
	jlog_cstr(&j, "hostname", cfg->hostname);
	jlog_u64(&j, "shards", nshards);
	jlog_strv(&j, "listen", listen, len);
	jlog_cstr(&j, "upstream", cfg->upstream);
	n = jlog_end(&j);
	(void)!write(STDOUT_FILENO, buf, n);
}

/* Say on stderr which zones the server starts with. */
static void
report_zones(const char *path)
{
	static struct zone_reader reader; /* the control thread's; registered once */
	struct zone_snap snap;
	const struct zone_table *t;

	if (path[0] == '\0') {
		fprintf(stderr, "sluice: no zones file: using the built-in zones "
				"(example.com -> inbox@sink.test)\n");
		return;
	}
	zonectl_reader_init(&reader);
	t = zonectl_enter(&reader, &snap);
	fprintf(stderr, "sluice: %s: %zu zones, %zu rules loaded\n", path, zone_table_nzones(t),
		zone_table_nrules(t));
	zonectl_leave(&reader, &snap);
}

/* Build *s from the srs-* keys; a bad secrets file is "FILE:LINE: reason", exit 1. */
static void
load_srs(const struct config *cfg, struct srs *s)
{
	char err[512];
	int rc = srs_init(s, cfg->srs_domain, cfg->srs_max_age);

	BUG_ON(rc < 0); /* config_set checked the domain and the range */
	if (srs_load_secrets(s, cfg->srs_secret, err, sizeof(err)) < 0)
		die_config(err);
}

/* One rewrite at the current time: the address on stdout, or the reason on stderr. */
static int
srs_rewrite(const struct srs *s, const char *fwd, const char *rev)
{
	char out[SRS_ADDR_BUF];
	int64_t now = (int64_t)time(NULL);

	if (fwd != NULL) {
		ssize_t n = srs_forward(s, fwd, strlen(fwd), now, out, sizeof(out));

		if (n == -SLUICE_ELIMIT) {
			fprintf(stderr,
				"sluice: --srs-forward %s: too long: over %d octets as SRS\n", fwd,
				SRS_MAX_ADDRESS);
			return 1;
		}
		if (n < 0) {
			fprintf(stderr,
				"sluice: --srs-forward %s: malformed: no domain, a quoted "
				"local part or an address literal\n",
				fwd);
			return 1;
		}
	} else {
		enum srs_status st = srs_reverse(s, rev, strlen(rev), now, out, sizeof(out));

		if (st != SRS_OK) {
			fprintf(stderr, "sluice: --srs-reverse %s: %s\n", rev, srs_status_text(st));
			return 1;
		}
	}
	printf("%s\n", out);
	return 0;
}

/*
 * --srs-forward ADDRESS / --srs-reverse ADDRESS, like postmap -q: exit 0
 * with the rewritten address on stdout, 1 with the reason on stderr, 2 on
 * a usage error. The result is main's exit status.
 */
static int
srs_cli(const struct config *cfg, struct srs *s, const char *fwd, const char *rev)
{
	int status;

	if (fwd != NULL && rev != NULL) {
		fprintf(stderr, "sluice: --srs-forward and --srs-reverse: one at a time\n");
		return 2;
	}
	if (cfg->srs_domain[0] == '\0') {
		fprintf(stderr, "sluice: --srs-forward/--srs-reverse need --srs-domain and "
				"--srs-secret (or srs-domain and srs-secret in -c FILE)\n");
		return 2;
	}
	status = srs_rewrite(s, fwd, rev);
	srs_fini(s);
	return status;
}

/* The loader thread serves SIGHUP and watches the zones file from now on. */
static void
start_zone_loader(struct logring *log)
{
	int ret = zonectl_start(log);

	if (ret < 0) {
		fprintf(stderr, "sluice: zone loader: %s\n", strerror(-ret));
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},	   /* -c FILE */
	    {"listen", required_argument, NULL, 'L'},	   /* listen (repeatable) */
	    {"shards", required_argument, NULL, 'S'},	   /* shards */
	    {"upstream", required_argument, NULL, 'U'},	   /* upstream */
	    {"hostname", required_argument, NULL, 'H'},	   /* hostname */
	    {"zones", required_argument, NULL, 'Z'},	   /* zones */
	    {"dns", required_argument, NULL, 'N'},	   /* dns, repeatable */
	    {"mx-port", required_argument, NULL, 'P'},	   /* mx-port */
	    {"tls-policy", required_argument, NULL, 'T'},  /* tls-policy */
	    {"ca-file", required_argument, NULL, 'A'},	   /* ca-file */
	    {"set", required_argument, NULL, 's'},	   /* any key: KEY=VALUE */
	    {"check-config", no_argument, NULL, 'C'},	   /* check and exit */
	    {"lookup", required_argument, NULL, 'K'},	   /* one routing decision */
	    {"srs-domain", required_argument, NULL, 'D'},  /* srs-domain */
	    {"srs-secret", required_argument, NULL, 'E'},  /* srs-secret */
	    {"srs-forward", required_argument, NULL, 'F'}, /* one SRS rewrite */
	    {"srs-reverse", required_argument, NULL, 'R'}, /* one SRS reversal */
	    {"verbose", no_argument, NULL, 'v'},	   /* with --check-config */
	    {"help", no_argument, NULL, 'h'},		   /* usage */
	    {NULL, 0, NULL, 0},
	};
	static struct config cfg; /* immutable once the shards start */
	const char *file = NULL, *lookup = NULL, *srs_fwd = NULL, *srs_rev = NULL;
	static struct srs srs; /* valid iff cfg.srs_domain is set */
	struct shard_shared shared = {0};
	static struct dedup dedup; /* every shard's partial deliveries (core/dedup.h) */
	struct zone_table *zones = NULL;
	bool check = false, verbose = false;
	struct shard *shards;
	bool *joined;
	static struct logring zlog; /* the zone loader's log lines */
	char err[512];
	sigset_t sigs;
	int sfd, opt, status = 0;
	unsigned n, ncpu, stopped = 0;
	bool stopping = false;

	config_defaults(&cfg);
	/* first pass: find -c, so the file is the layer below the options */
	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		if (opt == 'c')
			file = optarg;
		else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == '?') {
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (file != NULL) {
		config_begin_layer(&cfg);
		if (config_load_file(&cfg, file, err, sizeof(err)) < 0)
			die_config(err);
	}
	config_begin_layer(&cfg);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'L':
			override(&cfg, "listen", optarg, "--listen");
			break;
		case 'S':
			override(&cfg, "shards", optarg, "--shards");
			break;
		case 'U':
			override(&cfg, "upstream", optarg, "--upstream");
			break;
		case 'H':
			override(&cfg, "hostname", optarg, "--hostname");
			break;
		case 's': {
			char key[64];
			const char *eq = strchr(optarg, '=');

			if (eq == NULL || (size_t)(eq - optarg) >= sizeof(key)) {
				fprintf(stderr, "sluice: --set: expected KEY=VALUE, got '%s'\n",
					optarg);
				return 2;
			}
			memcpy(key, optarg, (size_t)(eq - optarg));
			key[eq - optarg] = '\0';
			override(&cfg, key, eq + 1, "--set");
			break;
		}
		case 'Z':
			override(&cfg, "zones", optarg, "--zones");
			break;
		case 'N':
			override(&cfg, "dns", optarg, "--dns");
			break;
		case 'P':
			override(&cfg, "mx-port", optarg, "--mx-port");
			break;
		case 'T':
			override(&cfg, "tls-policy", optarg, "--tls-policy");
			break;
		case 'A':
			override(&cfg, "ca-file", optarg, "--ca-file");
			break;
		case 'K':
			lookup = optarg;
			break;
		case 'D':
			override(&cfg, "srs-domain", optarg, "--srs-domain");
			break;
		case 'E':
			override(&cfg, "srs-secret", optarg, "--srs-secret");
			break;
		case 'F':
			srs_fwd = optarg;
			break;
		case 'R':
			srs_rev = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			break;
		}
	}
	if (config_finish(&cfg, err, sizeof(err)) < 0)
		die_config(err);
	/* the server loads the zones through zonectl_init below */
	if ((lookup != NULL || check) && cfg.zones[0] != '\0' &&
	    zone_table_load(cfg.zones, &zones, err, sizeof(err)) < 0)
		die_config(err);
	if (lookup != NULL) {
		/* like postmap -q: one decision as JSON, then exit */
		static struct zone_decision d;
		static char json[65536];

		if (zones == NULL) {
			fprintf(stderr,
				"sluice: --lookup needs --zones FILE (or zones in -c FILE)\n");
			return 2;
		}
		zone_lookup(zones, lookup, strlen(lookup), &d);
		zone_decision_json(&d, json, sizeof(json));
		fputs(json, stdout);
		zone_table_free(zones);
		return 0;
	}
	if (cfg.srs_domain[0] != '\0')
		load_srs(&cfg, &srs);
	if (srs_fwd != NULL || srs_rev != NULL)
		return srs_cli(&cfg, &srs, srs_fwd, srs_rev);
	if (check) {
		if (verbose)
			config_dump(&cfg, stdout);
		fprintf(stderr, "sluice: configuration OK%s%s%s%s", file ? ": " : "",
			file ? file : "", zones ? ", zones: " : "", zones ? cfg.zones : "");
		if (cfg.srs_domain[0] != '\0')
			fprintf(stderr, ", srs: %s (%u secrets)", cfg.srs_domain, srs.nsecrets);
		fputc('\n', stderr);
		zone_table_free(zones);
		return 0;
	}

	if (zonectl_init(cfg.zones, err, sizeof(err)) < 0)
		die_config(err);
	report_zones(cfg.zones);
	if (logring_init(&zlog, SHARD_LOG_RING) < 0) {
		fprintf(stderr, "sluice: %s\n", strerror(ENOMEM));
		return 1;
	}

	/* signals go to the signalfd of this thread; the shards inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("sluice: signalfd");
		return 1;
	}

	shared.srs = cfg.srs_domain[0] != '\0' ? &srs : NULL;
	if (dedup_init(&dedup, cfg.dedup_window_ms / 1000) < 0) {
		fprintf(stderr, "sluice: out of memory\n");
		return 1;
	}
	shared.dedup = &dedup;
	if (cfg.mx_delivery || cfg.upstream_tls != CONFIG_TLS_NONE) {
		/* MX delivery: the zones may ask TLS of any destination */
		/* built once, shared read-only by every shard (core/tls.h) */
		shared.tls_client =
		    tls_client_ctx_new(cfg.ca_file[0] ? cfg.ca_file : NULL, err, sizeof(err));
		if (shared.tls_client == NULL) {
			fprintf(stderr, "sluice: ca-file: %s\n", err);
			return 1;
		}
	}
	n = cfg.shards;
	ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	shards = calloc(n, sizeof(*shards));
	joined = calloc(n, sizeof(*joined));
	if (shards == NULL || joined == NULL)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		int ret = shard_init(&shards[i], i, &cfg, &shared);

		if (ret < 0) {
			fprintf(stderr, "sluice: shard %u: %s\n", i, strerror(-ret));
			return 1;
		}
		shards[i].cpu = (int)(i % ncpu);
	}
	for (unsigned i = 0; i < n; i++) {
		int ret = shard_start(&shards[i]);

		if (ret < 0) {
			fprintf(stderr, "sluice: shard %u: thread: %s\n", i, strerror(-ret));
			return 1;
		}
	}
	start_zone_loader(&zlog);
	log_event("start", &cfg, n);

	while (stopped < n) {
		struct pollfd pfd[] = {
		    {.fd = sfd, .events = POLLIN},
		    {.fd = zonectl_watch_fd(), .events = POLLIN}, /* poll ignores -1 */
		};

		if (poll(pfd, ARRAY_SIZE(pfd), MAIN_POLL_MS) > 0 && (pfd[1].revents & POLLIN))
			zonectl_watch_ready(); /* the zone file changed: the loader reloads it */
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				si.ssi_signo = 0;
			if (si.ssi_signo == SIGHUP) {
				zonectl_reload(); /* the loader thread reads the file */
			} else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) &&
				   !stopping) {
				stopping = true;
				for (unsigned i = 0; i < n; i++)
					shard_request_stop(&shards[i]);
			}
		}
		for (unsigned i = 0; i < n; i++)
			logring_drain(&shards[i].log, STDOUT_FILENO);
		logring_drain(&zlog, STDOUT_FILENO);
		for (unsigned i = 0; i < n; i++) {
			if (!joined[i] && pthread_tryjoin_np(shards[i].thread, NULL) == 0) {
				joined[i] = true;
				stopped++;
				if (shards[i].exit_status < 0 && !stopping) {
					/* a shard died: its share of connections would go
					 * nowhere, so stop the whole server loudly */
					fprintf(stderr, "sluice: shard %u failed: %s; stopping\n",
						i, strerror(-shards[i].exit_status));
					stopping = true;
					for (unsigned k = 0; k < n; k++)
						if (!joined[k])
							shard_request_stop(&shards[k]);
				}
			}
		}
	}
	for (unsigned i = 0; i < n; i++) {
		logring_drain(&shards[i].log, STDOUT_FILENO);
		if (shards[i].exit_status < 0) {
			fprintf(stderr, "sluice: shard %u stopped: %s\n", i,
				strerror(-shards[i].exit_status));
			status = 1;
		}
	}
	/* every shard has left its zone sections; their records are still in memory */
	zonectl_stop();
	logring_drain(&zlog, STDOUT_FILENO);
	logring_fini(&zlog);
	log_event("stop", &cfg, n);
	for (unsigned i = 0; i < n; i++)
		shard_fini(&shards[i]);
	tls_ctx_free(shared.tls_client);
	dedup_fini(&dedup);
	free(shards);
	free(joined);
	return status;
}

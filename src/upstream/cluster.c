/* Clusters from ServiceEntry resources: one per host and port with every
 * endpoint, and one per DestinationRule subset of it with the endpoints whose
 * labels the subset selects. Endpoints are a ServiceEntry's own and the
 * WorkloadEntries its workloadSelector picks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ringside/config-networking-t.h"
#include "ringside/config.h"
#include "ringside/net.h"
#include "ringside/tls-session.h"
#include "ringside/upstream.h"

/* One endpoint of a service port, before it is resolved into a cluster. */
struct ep_src {
	const char *address;
	uint32_t port;
	const struct rs_kv *labels;
	size_t nlabels;
	const struct rs_pos *pos;
	const char *ns; /* the namespace and service account its workload runs as */
	const char *service_account;
};

struct builder {
	const struct rs_config *cfg;
	const struct rs_identity *id;
	struct rs_clusters *out;
	size_t cap;
	struct rs_diags *diags;
	enum rs_up_proto proto; /* the protocol of the service port being built */
	struct ep_src *eps; /* owns: the endpoints of the service port being built */
	size_t neps;
	size_t cap_eps;
	/* Whole-service clusters by host and port, open addressing: a large
	 * mesh must not build in time quadratic in its services. */
	int *index; /* owns: cluster index + 1, 0 for empty */
	size_t mask;
};

static uint32_t key_hash(const char *host, uint32_t port)
{
	uint32_t h = 2166136261u ^ port; /* FNV-1a over the host, seeded by the port */

	while (*host)
		h = (h ^ (uint8_t)*host++) * 16777619u;
	return h;
}

/* The slot of host:port in b->index: its cluster's, or the empty one to take. */
static int *index_slot(const struct builder *b, const char *host, uint32_t port)
{
	for (size_t i = key_hash(host, port) & b->mask;; i = (i + 1) & b->mask) {
		int *slot = &b->index[i];
		const struct rs_cluster *c = *slot ? &b->out->v[*slot - 1] : NULL;

		if (!c || (c->port == port && strcmp(c->host, host) == 0))
			return slot;
	}
}

/* An endpoint's port for service port sp: its port named like sp, else sp's
 * targetPort, else sp's number (Istio's ServiceEntry rules). */
static uint32_t endpoint_port(const struct rs_se_port *sp, const struct rs_named_port *ports,
			      size_t nports)
{
	for (size_t i = 0; i < nports; i++)
		if (sp->name && strcmp(ports[i].name, sp->name) == 0)
			return ports[i].number;
	return sp->target_port ? sp->target_port : sp->number;
}

static int endpoint_init(struct rs_endpoint *e, const char *addr, uint32_t port)
{
	char name[80];
	int ret = rs_sockaddr_parse(addr, (uint16_t)port, &e->addr, &e->addr_len);

	if (ret < 0)
		return ret;
	snprintf(name, sizeof name, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
	e->name = strdup(name);
	return e->name ? 0 : -ENOMEM;
}

static int add_src(struct builder *b, struct ep_src src)
{
	if (b->neps == b->cap_eps) {
		size_t cap = b->cap_eps ? b->cap_eps * 2 : 8;
		struct ep_src *v = realloc(b->eps, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		b->eps = v;
		b->cap_eps = cap;
	}
	b->eps[b->neps++] = src;
	return 0;
}

/* The endpoints of se's port sp, into b->eps. */
static int gather(struct builder *b, const struct rs_service_entry *se, const struct rs_se_port *sp)
{
	const struct rs_config *cfg = b->cfg;
	int r = 0;

	b->neps = 0;
	for (size_t e = 0; e < se->nendpoints && r == 0; e++) {
		const struct rs_se_endpoint *ep = &se->endpoints[e];

		r = add_src(b, (struct ep_src){ep->address, endpoint_port(sp, ep->ports, ep->nports),
					       ep->labels, ep->nlabels, &ep->pos, se->ns,
					       ep->service_account});
	}
	for (size_t w = 0; w < cfg->n_workload_entries && r == 0; w++) {
		const struct rs_workload_entry *we = &cfg->workload_entries[w];

		if (we->address && rs_se_selects(se, we))
			r = add_src(b, (struct ep_src){we->address,
						       endpoint_port(sp, we->ports, we->nports),
						       we->labels, we->nlabels, &we->pos, we->ns,
						       we->service_account});
	}
	return r;
}

static const struct rs_port_traffic_policy *port_level(const struct rs_traffic_policy *tp,
						      uint32_t port)
{
	for (size_t i = 0; tp && i < tp->nport_level_settings; i++)
		if (tp->port_level_settings[i].port == port)
			return &tp->port_level_settings[i];
	return NULL;
}

/* Istio's precedence for each part of a traffic policy: a level's
 * port-level entry for the port, when there is one, replaces that level's
 * policy whole (what it leaves unset is the default, not inherited); then
 * the subset's part wins over the rule's, part by part. */
#define LEVEL(top, port, field)                                                             \
	((port) ? ((port)->field.set ? &(port)->field : NULL)                               \
		: ((top) && (top)->field.set ? &(top)->field : NULL))
#define POLICY(field)                                                                       \
	(LEVEL(sub, sp, field) ? LEVEL(sub, sp, field) : LEVEL(dr, dp, field))

static bool prefix(const char *s, const char *p)
{
	size_t n = strlen(p);

	return strncasecmp(s, p, n) == 0 && (s[n] == '\0' || s[n] == '-');
}

/* A service port's protocol, as Istio selects it: the protocol field, else
 * the name's prefix ("grpc-web", "http2-api"); anything else (declared
 * TCP, or nothing) goes as the client came. */
static enum rs_up_proto port_proto(const struct rs_se_port *sp)
{
	const char *p = sp->protocol;

	if (!p && sp->name)
		p = prefix(sp->name, "grpc-web") ? "GRPC-WEB"
		    : prefix(sp->name, "grpc")   ? "GRPC"
		    : prefix(sp->name, "http2")  ? "HTTP2"
		    : prefix(sp->name, "http")   ? "HTTP"
						 : NULL;
	if (!p)
		return RS_UP_AUTO;
	if (!strcasecmp(p, "HTTP2") || !strcasecmp(p, "GRPC") || !strcasecmp(p, "GRPC-WEB"))
		return RS_UP_HTTP2;
	if (!strcasecmp(p, "HTTP"))
		return RS_UP_HTTP1;
	return RS_UP_AUTO;
}

static void set_policy(struct rs_cluster *c, const struct rs_traffic_policy *dr,
		       const struct rs_traffic_policy *sub, enum rs_up_proto proto)
{
	const struct rs_port_traffic_policy *dp = port_level(dr, c->port);
	const struct rs_port_traffic_policy *sp = port_level(sub, c->port);
	const struct rs_lb_settings *lb = POLICY(load_balancer);
	const struct rs_conn_pool *pool;

	c->lb_cfg = lb;
	c->pool_cfg = POLICY(connection_pool);
	c->outlier_cfg = POLICY(outlier_detection);
	c->tls_cfg = POLICY(tls);
	pool = c->pool_cfg;
	/* ConnectionPoolSettings.HTTPSettings: h2UpgradePolicy UPGRADE sends
	 * HTTP/1.1 requests of the port as HTTP/2 to the destination's sidecar
	 * (reached by ISTIO_MUTUAL), which hands them to its application in the
	 * port's protocol; a destination without one may speak HTTP/1.1 only,
	 * so it is not upgraded. DO_NOT_UPGRADE keeps a port whose protocol is
	 * not declared on HTTP/1.1. */
	c->proto = proto;
	if (pool && pool->h2_upgrade_policy == RS_H2_UPGRADE_UPGRADE && proto != RS_UP_HTTP2 &&
	    c->tls_cfg && c->tls_cfg->mode == RS_TLS_ISTIO_MUTUAL)
		c->proto = RS_UP_HTTP2;
	else if (pool && pool->h2_upgrade_policy == RS_H2_UPGRADE_DO_NOT_UPGRADE &&
		 proto == RS_UP_AUTO)
		c->proto = RS_UP_HTTP1;
	c->h2_max_streams = pool && pool->http2_max_requests.set ? pool->http2_max_requests.v : 0;
	c->lb = RS_LB_KIND_LEAST_REQUEST; /* Istio's default since 1.14 */
	if (lb && lb->consistent_hash)
		c->lb = lb->hash_algo == RS_LB_HASH_MAGLEV ? RS_LB_KIND_MAGLEV : RS_LB_KIND_RING_HASH;
	else if (lb && lb->simple == RS_LB_ROUND_ROBIN)
		c->lb = RS_LB_KIND_ROUND_ROBIN;
	else if (lb && lb->simple == RS_LB_RANDOM)
		c->lb = RS_LB_KIND_RANDOM;
	else if (lb && lb->simple == RS_LB_PASSTHROUGH)
		c->lb = RS_LB_KIND_PASSTHROUGH; /* see pick_endpoint in proxy/stream.c */
}

/* ISTIO_MUTUAL: the workload's own certificate (--cert, --key), the mesh's
 * roots (--ca), and as the names to expect, the SPIFFE IDs of the service
 * accounts the cluster's endpoints run as, as Istio derives them; with none
 * known, any workload of the mesh is accepted (the chain is still checked). */
static struct rs_tls_ctx *mesh_ctx(struct builder *b, const char *sni, const struct rs_kv *sel,
				   size_t nsel, char *err, size_t errlen)
{
	const struct rs_identity *id = b->id;
	struct rs_client_tls mesh = {.set = true, .mode = RS_TLS_ISTIO_MUTUAL};
	struct rs_tls_ctx *t;
	char **ids = NULL;
	size_t n = 0;

	if (!id || !id->cert_file || !id->key_file || !id->ca_file) {
		snprintf(err, errlen, "ISTIO_MUTUAL needs the workload's --cert, --key and --ca");
		return NULL;
	}
	mesh.client_certificate = (char *)id->cert_file;
	mesh.private_key = (char *)id->key_file;
	mesh.ca_certificates = (char *)id->ca_file;
	mesh.sni = (char *)sni;
	ids = calloc(b->neps ? b->neps : 1, sizeof *ids);
	if (!ids) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t e = 0; e < b->neps; e++) {
		const struct ep_src *src = &b->eps[e];
		char spiffe[512];
		bool seen = false;

		if (!src->service_account || !rs_labels_include(src->labels, src->nlabels, sel, nsel))
			continue;
		snprintf(spiffe, sizeof spiffe, "spiffe://%s/ns/%s/sa/%s",
			 id->trust_domain ? id->trust_domain : "cluster.local", src->ns,
			 src->service_account);
		for (size_t i = 0; i < n && !seen; i++)
			seen = strcmp(ids[i], spiffe) == 0;
		if (!seen && !(ids[n++] = strdup(spiffe)))
			break;
	}
	t = rs_tls_client_ctx_new(&mesh, (const char *const *)ids, n, err, errlen);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return t;
}

/* Adds the cluster of host:port (subset NULL: the whole service) with the
 * gathered endpoints that sel selects, under the traffic policies dr (the
 * rule's) and sub (the subset's). */
static int add_cluster(struct builder *b, const char *res, const char *host, uint32_t port,
		       const char *subset, const struct rs_kv *sel, size_t nsel,
		       const struct rs_traffic_policy *dr, const struct rs_traffic_policy *sub)
{
	struct rs_cluster *c;
	char name[512];

	if (b->out->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct rs_cluster *v = realloc(b->out->v, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		b->out->v = v;
		b->cap = cap;
	}
	c = &b->out->v[b->out->n++];
	memset(c, 0, sizeof *c);
	/* Istio's cluster names: outbound|PORT|SUBSET|HOST. */
	snprintf(name, sizeof name, "outbound|%u|%s|%s", port, subset ? subset : "", host);
	c->name = strdup(name);
	c->host = strdup(host);
	c->subset = subset ? strdup(subset) : NULL;
	c->port = port;
	c->eps = calloc(b->neps ? b->neps : 1, sizeof *c->eps);
	if (!c->name || !c->host || (subset && !c->subset) || !c->eps)
		return -ENOMEM;
	for (size_t e = 0; e < b->neps; e++) {
		const struct ep_src *src = &b->eps[e];
		int ret;

		if (!rs_labels_include(src->labels, src->nlabels, sel, nsel))
			continue;
		ret = endpoint_init(&c->eps[c->neps], src->address, src->port);
		if (ret == -ENOMEM)
			return ret;
		if (ret < 0) {
			/* Reported once, for the whole service. */
			if (!subset)
				rs_diags_add(b->diags, RS_DIAG_WARNING, src->pos, res,
					     "endpoint address %s is not an IP address; skipped",
					     src->address);
			continue;
		}
		for (size_t l = 0; l < src->nlabels; l++)
			if (strcmp(src->labels[l].key, "security.istio.io/tlsMode") == 0 &&
			    strcmp(src->labels[l].value, "istio") == 0)
				c->eps[c->neps].sidecar = true;
		c->neps++;
	}
	c->ep_base = b->out->neps_total;
	b->out->neps_total += (uint32_t)c->neps;
	set_policy(c, dr, sub, b->proto);
	if (c->tls_cfg && c->tls_cfg->mode != RS_TLS_DISABLE) {
		char err[200];

		if (c->tls_cfg->mode == RS_TLS_ISTIO_MUTUAL)
			c->tls = mesh_ctx(b, c->tls_cfg->sni, sel, nsel, err, sizeof err);
		else
			c->tls = rs_tls_client_ctx_new(c->tls_cfg, NULL, 0, err, sizeof err);
		if (!c->tls && !(c->tls_error = strdup(err)))
			return -ENOMEM;
	} else if (!c->tls_cfg && b->id && b->id->cert_file && b->id->key_file && b->id->ca_file) {
		/* Istio's auto mutual TLS: without a rule's tls, endpoints that
		 * have a sidecar get ISTIO_MUTUAL, the others clear text. */
		bool all = c->neps > 0, any = false;

		for (size_t e = 0; e < c->neps; e++) {
			any |= c->eps[e].sidecar;
			all &= c->eps[e].sidecar;
		}
		if (any) {
			char err[200];

			c->tls = mesh_ctx(b, NULL, sel, nsel, err, sizeof err);
			c->auto_tls = c->tls != NULL;
			/* h2UpgradePolicy UPGRADE toward sidecars (set_policy). */
			if (c->auto_tls && all && c->pool_cfg &&
			    c->pool_cfg->h2_upgrade_policy == RS_H2_UPGRADE_UPGRADE)
				c->proto = RS_UP_HTTP2;
		}
	}
	return rs_lb_build(c);
}

static bool has_subset(const struct builder *b, size_t from, const char *name)
{
	for (size_t i = from; i < b->out->n; i++)
		if (b->out->v[i].subset && strcmp(b->out->v[i].subset, name) == 0)
			return true;
	return false;
}

/* The traffic policy of the rules in force: the first that has one (Istio
 * merges several rules' subsets, not their policies). */
static const struct rs_traffic_policy *rule_policy(const struct rs_config *cfg,
						   const struct rs_dr_pick *pick)
{
	for (size_t i = 0; i < pick->n; i++)
		if (cfg->destination_rules[pick->idx[i]].traffic_policy.set)
			return &cfg->destination_rules[pick->idx[i]].traffic_policy;
	return NULL;
}

/* The service's cluster for host:port, then one per subset in force
 * (merged DestinationRules, the first of a name wins). */
static int add_service(struct builder *b, const char *res, const char *host, uint32_t port)
{
	const struct rs_config *cfg = b->cfg;
	struct rs_dr_pick pick = rs_dr_in_force(cfg, host, b->id->ns, b->id);
	const struct rs_traffic_policy *tp = rule_policy(cfg, &pick);
	size_t from = b->out->n;
	int r = add_cluster(b, res, host, port, NULL, NULL, 0, tp, NULL);

	if (r < 0)
		return r;
	*index_slot(b, host, port) = (int)from + 1;
	for (size_t i = 0; i < pick.n; i++) {
		const struct rs_destination_rule *dr = &cfg->destination_rules[pick.idx[i]];

		for (size_t k = 0; k < dr->nsubsets; k++) {
			const struct rs_dr_subset *s = &dr->subsets[k];

			if (!s->name || has_subset(b, from, s->name))
				continue;
			r = add_cluster(b, res, host, port, s->name, s->labels, s->nlabels, tp,
					&s->traffic_policy);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int rs_clusters_build(const struct rs_config *cfg, const struct rs_identity *id,
		      struct rs_clusters *out, struct rs_diags *diags)
{
	struct builder b = {.cfg = cfg, .id = id, .out = out, .diags = diags};
	size_t keys = 0, cap = 16;
	int r = 0;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < cfg->n_service_entries; i++)
		keys += cfg->service_entries[i].nhosts * cfg->service_entries[i].nports;
	while (cap < keys * 2)
		cap *= 2;
	b.index = calloc(cap, sizeof *b.index);
	if (!b.index)
		return -ENOMEM;
	b.mask = cap - 1;
	for (size_t i = 0; i < cfg->n_service_entries && r == 0; i++) {
		const struct rs_service_entry *se = &cfg->service_entries[i];
		char res[256];

		snprintf(res, sizeof res, "ServiceEntry/%s/%s", se->ns, se->name);
		if (se->resolution != RS_SE_RESOLUTION_STATIC && se->nendpoints == 0 &&
		    !se->nworkload_selector)
			rs_diags_add(diags, RS_DIAG_WARNING, &se->pos, res,
				     "only resolution STATIC with endpoints is routed yet; the "
				     "hosts of this ServiceEntry get no endpoints");
		for (size_t p = 0; p < se->nports && r == 0; p++) {
			const struct rs_se_port *sp = &se->ports[p];

			r = gather(&b, se, sp);
			b.proto = port_proto(sp);
			for (size_t h = 0; h < se->nhosts && r == 0; h++) {
				if (*index_slot(&b, se->hosts[h], sp->number)) {
					rs_diags_add(diags, RS_DIAG_WARNING, &se->pos, res,
						     "host %s port %u is already defined by an "
						     "earlier ServiceEntry; this one is ignored",
						     se->hosts[h], sp->number);
					continue;
				}
				r = add_service(&b, res, se->hosts[h], sp->number);
			}
		}
	}
	/* Inbound requests go to the local application, on the address the
	 * stream works out for each (Sidecar ingress, else loopback). */
	b.neps = 0;
	b.proto = RS_UP_AUTO;
	if (r == 0)
		r = add_cluster(&b, "inbound", "local", 0, NULL, NULL, 0, NULL, NULL);
	if (r == 0) {
		struct rs_cluster *c = &out->v[out->n - 1];

		free(c->name);
		c->name = strdup("inbound|||");
		c->lb = RS_LB_KIND_LOCAL;
		out->inbound = out->n - 1;
		if (!c->name)
			r = -ENOMEM;
	}
	free(b.eps);
	free(b.index);
	if (r < 0)
		rs_clusters_free(out);
	return r;
}

void rs_clusters_free(struct rs_clusters *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct rs_cluster *c = &cs->v[i];

		for (size_t e = 0; c->eps && e < c->neps; e++)
			free(c->eps[e].name);
		free(c->eps);
		free(c->ring);
		free(c->ring_lut);
		free(c->table);
		free(c->name);
		free(c->host);
		free(c->subset);
		rs_tls_ctx_free(c->tls);
		free(c->tls_error);
	}
	free(cs->v);
	cs->v = NULL;
	cs->n = 0;
}

int rs_clusters_find_subset(const struct rs_clusters *cs, const char *host, uint32_t port,
			    const char *subset)
{
	for (size_t i = 0; i < cs->n; i++) {
		const struct rs_cluster *c = &cs->v[i];

		if (c->port == port && strcmp(c->host, host) == 0 &&
		    (subset ? c->subset && strcmp(c->subset, subset) == 0 : !c->subset))
			return (int)i;
	}
	return -1;
}

int rs_clusters_find(const struct rs_clusters *cs, const char *host, uint32_t port)
{
	return rs_clusters_find_subset(cs, host, port, NULL);
}

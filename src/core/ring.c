/* io_uring set-up and the start-up probe of every feature ringside uses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "ringside/core.h"

static const char *kernel_release(void)
{
	static __thread struct utsname u;

	if (uname(&u) != 0)
		return "unknown";
	return u.release;
}

/* Each entry: the opcode, its name for the message, and the kernel that added
 * what we rely on (multishot flavours need newer kernels than the opcode). */
static const struct {
	int op;
	const char *name;
} needed_ops[] = {
	{IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},
	{IORING_OP_RECV, "IORING_OP_RECV"},
	{IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},
	{IORING_OP_CONNECT, "IORING_OP_CONNECT"},
	{IORING_OP_LINK_TIMEOUT, "IORING_OP_LINK_TIMEOUT"},
	{IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
	{IORING_OP_READ, "IORING_OP_READ"},
};

int rs_ring_probe(char *err, size_t errlen)
{
	struct io_uring ring;
	struct io_uring_probe *probe = NULL;
	struct io_uring_buf_reg reg = {0};
	void *mem = NULL;
	int ret;

	ret = rs_ring_init(&ring, 8);
	if (ret == -EPERM || ret == -ENOSYS || ret == -EACCES) {
		snprintf(err, errlen,
			 "io_uring is not available (io_uring_setup: %s) on kernel %s. It is "
			 "probably blocked: container runtimes block io_uring with seccomp "
			 "(Docker's default profile does), and kernel.io_uring_disabled=2 "
			 "disables it. Run ringside with a seccomp profile that allows "
			 "io_uring_setup/io_uring_enter/io_uring_register, or set "
			 "sysctl kernel.io_uring_disabled=0.",
			 strerror(-ret), kernel_release());
		return ret;
	}
	if (ret == -EINVAL) {
		snprintf(err, errlen,
			 "io_uring_setup refused IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN on "
			 "kernel %s; ringside needs Linux 6.1 or newer.",
			 kernel_release());
		return ret;
	}
	if (ret < 0) {
		snprintf(err, errlen, "io_uring_setup failed on kernel %s: %s", kernel_release(),
			 strerror(-ret));
		return ret;
	}

	probe = io_uring_get_probe_ring(&ring);
	if (!probe) {
		snprintf(err, errlen,
			 "io_uring opcode probe (IORING_REGISTER_PROBE) failed on kernel %s; "
			 "ringside needs Linux 6.1 or newer.",
			 kernel_release());
		ret = -ENOTSUP;
		goto out_ring;
	}
	for (size_t i = 0; i < sizeof needed_ops / sizeof needed_ops[0]; i++) {
		if (!io_uring_opcode_supported(probe, needed_ops[i].op)) {
			snprintf(err, errlen,
				 "io_uring operation %s is not supported by kernel %s; ringside "
				 "needs Linux 6.1 or newer.",
				 needed_ops[i].name, kernel_release());
			ret = -ENOTSUP;
			goto out_probe;
		}
	}
	if (!(ring.features & IORING_FEAT_EXT_ARG)) {
		snprintf(err, errlen,
			 "io_uring feature IORING_FEAT_EXT_ARG (timed waits) is missing on kernel "
			 "%s; ringside needs Linux 6.1 or newer.",
			 kernel_release());
		ret = -ENOTSUP;
		goto out_probe;
	}

	/* Provided buffer rings (5.19) back multishot receive (6.0). */
	if (posix_memalign(&mem, 4096, 4096) != 0) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory while probing io_uring");
		goto out_probe;
	}
	memset(mem, 0, 4096);
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = 1;
	reg.bgid = 7;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret < 0) {
		snprintf(err, errlen,
			 "io_uring provided buffer rings (IORING_REGISTER_PBUF_RING) are not "
			 "supported by kernel %s (%s); ringside needs Linux 6.1 or newer.",
			 kernel_release(), strerror(-ret));
		goto out_mem;
	}
	io_uring_unregister_buf_ring(&ring, 7);
	ret = 0;
out_mem:
	free(mem);
out_probe:
	io_uring_free_probe(probe);
out_ring:
	io_uring_queue_exit(&ring);
	return ret;
}

int rs_ring_init(struct io_uring *ring, unsigned entries)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof p);
	/* SINGLE_ISSUER: only the shard's own thread submits, which lets the
	 * kernel skip locking on submission. DEFER_TASKRUN: completion work runs
	 * when this thread enters the kernel to wait, not by interrupting it in
	 * the middle of a batch, so a batch of completions is handled without
	 * preemption by task work. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	/* A multishot accept/recv can post many completions per submission; a
	 * CQ four times the SQ keeps bursts from overflowing into the kernel's
	 * slow backlog list. */
	p.flags |= IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	/* Completions that do not fit are kept by the kernel rather than lost. */
	return io_uring_queue_init_params(entries, ring, &p);
}

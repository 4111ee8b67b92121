/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ovs collector, part 2 (included by capture.bpf.c after capture_ex() and the argument
 * helpers): one function per OVS hook kind, selected by the per-probe constant cfg_ovs. Each
 * gathers the OVS fields, finds the skb the event is about (an argument, or the one its entry
 * probe remembered) and hands both to capture_ex(), which writes the usual sections plus the OVS
 * block. Helper probes (entry halves) only update the per-task maps and write no event.
 */
#ifndef __RETIS_CAPTURE_OVS_HOOKS_BPF_H
#define __RETIS_CAPTURE_OVS_HOOKS_BPF_H

/* Module types (openvswitch, nf_nat), relocated against the module BTF at load. */
struct dp_upcall_info___rts {
	__u8 cmd;
	__u32 portid;
} __attribute__((preserve_access_index));

struct sw_flow_key___rts {
	__u32 recirc_id;
} __attribute__((preserve_access_index));

struct sw_flow_id___rts {
	__u32 ufid_len;
	union {
		__u32 ufid[4];
		void *unmasked_key;
	};
} __attribute__((preserve_access_index));

struct sw_flow___rts {
	struct sw_flow_id___rts id;
	void *sf_acts;
} __attribute__((preserve_access_index));

struct nf_conntrack_zone___rts {
	__u16 id;
} __attribute__((preserve_access_index));

union nf_inet_addr___rts {
	__u32 all[4];
} __attribute__((preserve_access_index));

union nf_conntrack_man_proto___rts {
	__u16 all;
} __attribute__((preserve_access_index));

struct nf_nat_range2___rts {
	unsigned int flags;
	union nf_inet_addr___rts min_addr;
	union nf_inet_addr___rts max_addr;
	union nf_conntrack_man_proto___rts min_proto;
	union nf_conntrack_man_proto___rts max_proto;
} __attribute__((preserve_access_index));

struct ovs_conntrack_info___rts {
	struct nf_conntrack_zone___rts zone;
	__u8 commit : 1;
	__u8 nat : 3;
	__u8 force : 1;
	__u8 family;
	struct nf_nat_range2___rts range;
} __attribute__((preserve_access_index));

/* enum ovs_action_attr (uapi, stable numbers) values with extra data. */
#define OVS_ACT_OUTPUT 1
#define OVS_ACT_RECIRC 7
#define OVS_ACT_CT 12
/* enum ovs_ct_nat bits of ovs_conntrack_info.nat */
#define OVS_CT_NAT_BIT 1
#define OVS_CT_SRC_NAT_BIT 2
#define OVS_CT_DST_NAT_BIT 4
/* nf_nat_range2.flags */
#define NAT_RANGE_MAP_IPS 1
#define NAT_RANGE_PROTO_SPECIFIED 2
#define NAT_RANGE_PROTO_RANDOM 4
#define NAT_RANGE_PERSISTENT 8
#define NAT_RANGE_PROTO_RANDOM_FULLY 16
/* Retis's R_OVS_CT_* flag bits (retis-events ovs.rs). */
#define R_CT_COMMIT (1 << 0)
#define R_CT_FORCE (1 << 1)
#define R_CT_IP4 (1 << 2)
#define R_CT_IP6 (1 << 3)
#define R_CT_NAT (1 << 4)
#define R_CT_NAT_SRC (1 << 5)
#define R_CT_NAT_DST (1 << 6)
#define R_CT_RANGE_MAP_IPS (1 << 7)
#define R_CT_RANGE_PROTO_SPECIFIED (1 << 8)
#define R_CT_RANGE_PROTO_RANDOM (1 << 9)
#define R_CT_RANGE_PERSISTENT (1 << 10)
#define R_CT_RANGE_PROTO_RANDOM_FULLY (1 << 11)
#define NFPROTO_IPV4_ 2
#define NFPROTO_IPV6_ 10

/* The OVS block of an event, on the BPF stack (~150 bytes) until capture_ex copies it. */
/*
 * The OVS block under construction. Not on the stack: with the tracking, packet and ct state of
 * capture_ex() and the ct_fill() call it pushed the frames past the 512-byte BPF stack (the 6.1
 * verifier: "combined stack size of 2 calls is 544"). One slot per CPU in a map of this object
 * instance only (one instance per probe), and a program never nests with itself on a CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct retis_ovs_event);
} ovs_scratch_map SEC(".maps");

static __always_inline struct retis_ovs_event *ovs_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ovs_scratch_map, &zero);
}

static __always_inline void ovs_zero(struct retis_ovs_event *o)
{
	__builtin_memset(o, 0, sizeof(*o));
}

static __noinline void ovs_ct_action(struct retis_ovs_event *o, const void *data)
{
	struct ovs_conntrack_info___rts *info = (void *)data;
	__u32 f = 0;
	__u8 nat, family;

	o->ct_zone = BPF_CORE_READ(info, zone.id);
	if (BPF_CORE_READ_BITFIELD_PROBED(info, commit))
		f |= R_CT_COMMIT;
	if (BPF_CORE_READ_BITFIELD_PROBED(info, force))
		f |= R_CT_FORCE;
	/* family is a u16 in the kernel: its low byte holds NFPROTO_* on little-endian. */
	family = BPF_CORE_READ(info, family);
	if (family == NFPROTO_IPV4_)
		f |= R_CT_IP4;
	else if (family == NFPROTO_IPV6_)
		f |= R_CT_IP6;
	nat = BPF_CORE_READ_BITFIELD_PROBED(info, nat);
	if (nat) {
		unsigned int rf = BPF_CORE_READ(info, range.flags);

		f |= R_CT_NAT;
		if (nat & OVS_CT_SRC_NAT_BIT)
			f |= R_CT_NAT_SRC;
		if (nat & OVS_CT_DST_NAT_BIT)
			f |= R_CT_NAT_DST;
		if (rf & NAT_RANGE_PERSISTENT)
			f |= R_CT_RANGE_PERSISTENT;
		if (rf & NAT_RANGE_PROTO_RANDOM)
			f |= R_CT_RANGE_PROTO_RANDOM;
		if (rf & NAT_RANGE_PROTO_RANDOM_FULLY)
			f |= R_CT_RANGE_PROTO_RANDOM_FULLY;
		if (rf & NAT_RANGE_MAP_IPS) {
			f |= R_CT_RANGE_MAP_IPS;
			bpf_probe_read_kernel(o->ct_min_addr, 16, __builtin_preserve_access_index(&info->range.min_addr));
			bpf_probe_read_kernel(o->ct_max_addr, 16, __builtin_preserve_access_index(&info->range.max_addr));
			if (family == NFPROTO_IPV6_)
				o->flags |= RETIS_OVS_FLAGS_CT_IP6;
		}
		if (rf & NAT_RANGE_PROTO_SPECIFIED) {
			f |= R_CT_RANGE_PROTO_SPECIFIED;
			o->ct_min_port = BPF_CORE_READ(info, range.min_proto.all);
			o->ct_max_port = BPF_CORE_READ(info, range.max_proto.all);
		}
	}
	o->ct_flags = f;
}

/* raw_tp openvswitch:ovs_dp_upcall(dp, skb, key, upcall_info) and
 * openvswitch:ovs_do_execute_action(dp, skb, key, attr, rem). */
static __always_inline int ovs_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)raw_arg(ctx, 1);
	struct retis_ovs_event *o = ovs_scratch();

	if (!o)
		return 0;

	ovs_zero(o);
	if (cfg_ovs == RETIS_OVS_HOOK_UPCALL) {
		struct dp_upcall_info___rts *info = (void *)raw_arg(ctx, 3);

		if (!info)
			return 0;
		o->kind = RETIS_OVS_KIND_UPCALL;
		o->port = BPF_CORE_READ(info, portid);
		o->cmd = BPF_CORE_READ(info, cmd);
		o->cpu = bpf_get_smp_processor_id();
	} else if (cfg_ovs == RETIS_OVS_HOOK_EXEC_TP) {
		struct sw_flow_key___rts *key = (void *)raw_arg(ctx, 2);
		const void *attr = (const void *)raw_arg(ctx, 3);
		__u16 hdr[2] = {};
		__u64 tkey = ovs_task_key();
		struct ovs_exec_ctx *ectx;

		if (!key || !attr)
			return 0;
		o->kind = RETIS_OVS_KIND_ACTION_EXECUTE;
		bpf_probe_read_kernel(hdr, sizeof(hdr), attr);
		o->action = hdr[1] & 0x3fff; /* nla_type(): NLA_TYPE_MASK */
		o->recirc_id = BPF_CORE_READ(key, recirc_id);
		if (hdr[0] >= 8)
			bpf_probe_read_kernel(&o->arg, sizeof(o->arg), attr + 4);
		if (o->action == OVS_ACT_OUTPUT)
			o->port = o->arg;
		else if (o->action == OVS_ACT_CT)
			ovs_ct_action(o, attr + 4);
		ectx = bpf_map_lookup_elem(&ovs_inflight_exec, &tkey);
		if (ectx && ectx->command) {
			o->queue_id = ectx->queue_id;
			o->flags |= RETIS_OVS_FLAGS_QUEUE_ID;
		}
	} else {
		return 0;
	}
	return capture_ex(ctx, skb, NULL, -1, false, 0, false, o);
}

static __always_inline int ovs_kprobe(struct pt_regs *ctx)
{
	__u64 key = ovs_task_key();

	if (cfg_ovs == RETIS_OVS_HOOK_ENQUEUE_ENTRY) {
		/* queue_userspace_packet(dp, skb, key, upcall_info, cutlen) */
		struct ovs_enqueue_ctx q = { .skb = regs_arg(ctx, 1), .upcall_info = regs_arg(ctx, 3) };

		/* Only enqueues of an upcall we saw (Retis: "skipped if no upcall in flight"). */
		if (bpf_map_lookup_elem(&ovs_inflight_upcalls, &key))
			bpf_map_update_elem(&ovs_inflight_enqueue, &key, &q, BPF_ANY);
	} else if (cfg_ovs == RETIS_OVS_HOOK_PROCESS_PACKET) {
		/* ovs_dp_process_packet(skb, key): the skb the flow lookup is for. */
		struct ovs_exec_ctx e = { .skb = regs_arg(ctx, 0) };

		bpf_map_update_elem(&ovs_inflight_exec, &key, &e, BPF_ANY);
	} else if (cfg_ovs == RETIS_OVS_HOOK_LOOKUP_ENTRY) {
		/* ovs_flow_tbl_lookup_stats(tbl, key, skb_hash, n_mask_hit, n_cache_hit) */
		struct ovs_exec_ctx *e = bpf_map_lookup_elem(&ovs_inflight_exec, &key);

		if (e) {
			e->n_mask_hit = regs_arg(ctx, 3);
			e->n_cache_hit = regs_arg(ctx, 4);
		}
	} else if (cfg_ovs == RETIS_OVS_HOOK_EXEC_ACTIONS) {
		/*
		 * ovs_execute_actions(dp, skb, acts, key): the datapath running a flow's actions
		 * (inside ovs_dp_process_packet, on the skb remembered there) or ovs-vswitchd's
		 * OVS_PACKET_CMD_EXECUTE of a packet it received in an upcall. The latter is
		 * recognised by its queue_id (hash of the first 64 bytes, taken before any action
		 * changes the packet): announced by USDT op_flow_execute (--ovs-track, Retis's
		 * way), or else matching a packet we saw enqueued, so the re-injected packet's
		 * actions join the upcall's series even when ovs-vswitchd has no USDT probes.
		 */
		struct sk_buff *skb = (struct sk_buff *)regs_arg(ctx, 1);
		struct ovs_exec_ctx fresh = { .skb = (__u64)skb };
		struct ovs_exec_ctx *e;
		__u64 *enq_ts;
		__u32 q;

		if (!skb)
			return 0;
		e = bpf_map_lookup_elem(&ovs_inflight_exec, &key);
		if (e && e->skb == (__u64)skb) {
			e->command = 0;
			return 0;
		}
		bpf_map_update_elem(&ovs_inflight_exec, &key, &fresh, BPF_ANY);
		e = bpf_map_lookup_elem(&ovs_inflight_exec, &key);
		if (!e)
			return 0;
		q = ovs_hash_skb(skb);
		if (bpf_map_lookup_elem(&ovs_flow_exec_tracking, &q)) {
			e->queue_id = q;
			e->command = 1;
			bpf_map_delete_elem(&ovs_flow_exec_tracking, &q);
		} else if ((enq_ts = bpf_map_lookup_elem(&ovs_upcall_tracking, &q)) &&
			   bpf_ktime_get_ns() - *enq_ts < OVS_UPCALL_MATCH_NS) {
			e->queue_id = q;
			e->command = 1;
			bpf_map_delete_elem(&ovs_upcall_tracking, &q);
		}
	}
	return 0;
}

static __always_inline int ovs_kretprobe(struct pt_regs *ctx)
{
	__u64 key = ovs_task_key();
	struct retis_ovs_event *o = ovs_scratch();

	if (!o)
		return 0;
	struct sk_buff *skb;

	ovs_zero(o);
	if (cfg_ovs == RETIS_OVS_HOOK_UPCALL_RET) {
		struct ovs_upcall_ctx *u = bpf_map_lookup_elem(&ovs_inflight_upcalls, &key);

		if (!u)
			return 0;
		o->kind = RETIS_OVS_KIND_UPCALL_RETURN;
		o->upcall_ts = u->ts;
		o->upcall_cpu = u->cpu;
		o->ret = (int)PT_REGS_RC(ctx);
		skb = (struct sk_buff *)u->skb;
		bpf_map_delete_elem(&ovs_inflight_upcalls, &key);
	} else if (cfg_ovs == RETIS_OVS_HOOK_ENQUEUE_RET) {
		struct ovs_upcall_ctx *u = bpf_map_lookup_elem(&ovs_inflight_upcalls, &key);
		struct ovs_enqueue_ctx *q = bpf_map_lookup_elem(&ovs_inflight_enqueue, &key);
		struct dp_upcall_info___rts *info;

		if (!u || !q)
			return 0;
		skb = (struct sk_buff *)q->skb;
		info = (void *)q->upcall_info;
		o->kind = RETIS_OVS_KIND_UPCALL_ENQUEUE;
		o->upcall_ts = u->ts;
		o->upcall_cpu = u->cpu;
		o->ret = (int)PT_REGS_RC(ctx);
		if (info) {
			o->port = BPF_CORE_READ(info, portid);
			o->cmd = BPF_CORE_READ(info, cmd);
		}
		bpf_map_delete_elem(&ovs_inflight_enqueue, &key);
		if (!skb)
			return 0;
		o->queue_id = ovs_hash_skb(skb);
	} else if (cfg_ovs == RETIS_OVS_HOOK_LOOKUP_RET) {
		struct ovs_exec_ctx *e = bpf_map_lookup_elem(&ovs_inflight_exec, &key);
		struct sw_flow___rts *flow = (void *)PT_REGS_RC(ctx);

		if (!e)
			return 0;
		o->kind = RETIS_OVS_KIND_FLOW_LOOKUP;
		skb = (struct sk_buff *)e->skb;
		if (e->n_mask_hit)
			bpf_probe_read_kernel(&o->n_mask_hit, sizeof(o->n_mask_hit), (void *)e->n_mask_hit);
		if (e->n_cache_hit)
			bpf_probe_read_kernel(&o->n_cache_hit, sizeof(o->n_cache_hit), (void *)e->n_cache_hit);
		if (flow) {
			o->flow = (__u64)flow;
			bpf_probe_read_kernel(o->ufid, sizeof(o->ufid), __builtin_preserve_access_index(&flow->id.ufid));
			o->sf_acts = (__u64)BPF_CORE_READ(flow, sf_acts);
		} else {
			/* A miss: an upcall follows; the processing context is done (Retis). */
			bpf_map_delete_elem(&ovs_inflight_exec, &key);
		}
	} else {
		return 0;
	}
	return capture_ex(ctx, skb, NULL, -1, false, 0, false, o);
}

/*
 * USDT probes of ovs-vswitchd (--ovs-track). OVS fires
 *   dpif_recv:recv_upcall(dpif name, upcall type, packet data, packet size, key, key_len)
 *   dpif_netlink_operate__:op_flow_put / op_flow_execute(...)   (no argument read)
 * recv_upcall hashes the received packet like the enqueue probe did (queue_id) and reports it
 * only if that enqueue was seen, as Retis does; operations are attributed to the batch's upcalls
 * in order (ovs.bpf.h).
 */
static __always_inline int ovs_usdt(struct pt_regs *ctx)
{
	struct retis_ovs_event *o = ovs_scratch();

	if (!o)
		return 0;
	struct ovs_batch *b;

	ovs_zero(o);
	if (cfg_ovs == RETIS_OVS_HOOK_RECV_UPCALL) {
		long type = 0, data = 0, size = 0, key_len = 0;
		bool skip;
		__u32 q, idx;

		if (bpf_usdt_arg(ctx, 1, &type) || bpf_usdt_arg(ctx, 2, &data) || bpf_usdt_arg(ctx, 3, &size) ||
		    bpf_usdt_arg(ctx, 5, &key_len))
			return 0;
		q = ovs_hash_bytes((const void *)data, (__u64)(__u32)size, true);
		skip = !bpf_map_lookup_elem(&ovs_upcall_tracking, &q);
		bpf_map_delete_elem(&ovs_upcall_tracking, &q);
		if (cfg_ovs_track == 2)
			skip = false;
		b = ovs_batch_get();
		if (!b)
			return 0;
		if (b->processing) {
			b->processing = 0;
			b->leader_ts = 0;
			b->current = 0;
			b->total = 0;
		}
		idx = b->total;
		if (idx >= OVS_BATCH_MAX - 1)
			return 0;
		b->up[idx & (OVS_BATCH_MAX - 1)].queue_id = q;
		b->up[idx & (OVS_BATCH_MAX - 1)].skip = skip;
		b->up[idx & (OVS_BATCH_MAX - 1)].ops = 0;
		b->total = idx + 1;
		if (skip) {
			if (idx == 0)
				b->leader_ts = bpf_ktime_get_ns();
			return 0;
		}
		o->kind = RETIS_OVS_KIND_RECV_UPCALL;
		o->type = type;
		o->pkt_size = size;
		o->key_size = key_len;
		o->queue_id = q;
		o->batch_idx = b->current;
		/* The leader's batch_ts is its own timestamp: set in ovs_pre(). */
		o->batch_ts = idx == 0 ? 0 : b->leader_ts;
	} else if (cfg_ovs == RETIS_OVS_HOOK_OP_EXEC || cfg_ovs == RETIS_OVS_HOOK_OP_PUT) {
		__u8 op = cfg_ovs == RETIS_OVS_HOOK_OP_PUT ? 1 : 0;
		__u8 flag = 1 << op;
		struct ovs_batch_upcall *info;
		__u32 cur;

		b = ovs_batch_get();
		if (!b || !b->total)
			return 0; /* recv_upcall missed (capture started mid-batch) */
		if (!b->processing) {
			b->current = 0;
			b->processing = 1;
		}
		cur = b->current;
		if (cur >= OVS_BATCH_MAX - 1)
			return 0;
		info = &b->up[cur & (OVS_BATCH_MAX - 1)];
		if (info->ops & flag) {
			/* An operation is done once per upcall: this one is for the next upcall. */
			if (cur + 1 >= b->total || cur + 1 >= OVS_BATCH_MAX - 1)
				return 0;
			cur++;
			b->current = cur;
			info = &b->up[cur & (OVS_BATCH_MAX - 1)];
		}
		info->ops |= flag;
		if (info->skip)
			return 0;
		o->kind = RETIS_OVS_KIND_FLOW_OPERATION;
		o->op_type = op;
		o->queue_id = info->queue_id;
		o->batch_ts = b->leader_ts;
		o->batch_idx = cur;
	} else {
		return 0;
	}
	return capture_ex(ctx, NULL, NULL, -1, false, PT_REGS_IP(ctx), false, o);
}

#endif

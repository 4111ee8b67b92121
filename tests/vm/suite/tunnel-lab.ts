/**
 * A router that forwards into an ipip tunnel, for the VM tests of skb-tracking across a head
 * reallocation: client --veth--> router --ipip over a dummy--> nowhere. A packet forwarded into
 * the tunnel needs more headroom than it has, so ip_forward's skb_cow calls pskb_expand_head.
 */
import type { Netns } from '../../bpf/helpers.ts';

/**
 * Wire `client` and `router` on 10.<net>.0.0/24 (client .1, router .2), the tunnel over a dummy on
 * 10.<net+1>.0.0/24, and route 10.<net+2>.0.0/24 into the tunnel: ping an address there from the
 * client.
 */
export function tunnelRouter(client: Netns, router: Netns, net: number): void {
  const [a, b, c] = [net, net + 1, net + 2];
  client.exec('sh', ['-c', `ip link add eth0 type veth peer name eth0r netns ${router.name}
      ip addr add 10.${a}.0.1/24 dev eth0 && ip link set eth0 up && ip route add default via 10.${a}.0.2`]);
  router.exec('sh', ['-c', `sysctl -qw net.ipv4.ip_forward=1
      ip addr add 10.${a}.0.2/24 dev eth0r && ip link set eth0r up
      ip link add dum0 type dummy && ip addr add 10.${b}.0.1/24 dev dum0 && ip link set dum0 up
      ip link add tun0 type ipip local 10.${b}.0.1 remote 10.${b}.0.2 && ip link set tun0 up
      ip route add 10.${c}.0.0/24 dev tun0`]);
}

/**
 * Which addresses install-from-url may reach. A URL given to the admin API is
 * fetched by the host, from inside its network: without this guard an admin
 * token (or a redirect from a public server) reaches loopback services, the
 * LAN and the cloud metadata endpoint. Addresses are checked after DNS
 * resolution, and the connection goes to the address that was checked, so a
 * name that resolves differently the second time (DNS rebinding) changes nothing.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import { Errors } from '../errors';

/** Refused address classes, most specific first: the first match names the refusal. */
const REFUSED: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, number, 'ipv4' | 'ipv6']>]> = [
  ['cloud metadata', [['169.254.169.254', 32, 'ipv4'], ['fd00:ec2::254', 128, 'ipv6']]],
  ['loopback', [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']]],
  ['unspecified', [['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']]],
  ['private', [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4']]],
  ['unique local', [['fc00::', 7, 'ipv6']]],
  ['link-local', [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']]],
  ['shared (CGNAT)', [['100.64.0.0', 10, 'ipv4']]],
  ['multicast', [['224.0.0.0', 4, 'ipv4'], ['ff00::', 8, 'ipv6']]],
  ['reserved', [['240.0.0.0', 4, 'ipv4']]],
];

const CLASSES = REFUSED.map(([name, ranges]) => {
  const list = new net.BlockList();
  for (const [prefix, bits, family] of ranges) list.addSubnet(prefix, bits, family);
  return [name, list] as const;
});

function family(address: string): 'ipv4' | 'ipv6' {
  return net.isIPv6(address) ? 'ipv6' : 'ipv4';
}

/**
 * The refused class an address belongs to ("loopback", "private", ...), or null
 * for a public address. IPv4-mapped IPv6 (::ffff:127.0.0.1) counts as its IPv4
 * address: net.BlockList matches it against the IPv4 ranges.
 */
export function refusedClass(address: string): string | null {
  const fam = family(address);
  for (const [name, list] of CLASSES) if (list.check(address, fam)) return name;
  return null;
}

export interface UrlGuardOptions {
  /**
   * Hosts and networks install-from-url may reach although they are internal:
   * a host name ("bundles.internal", matched exactly, case-insensitively)
   * permits every address it resolves to; an address or CIDR ("10.1.2.0/24",
   * "127.0.0.1", "fd12::/16") permits addresses inside it, whatever name led there.
   * Default: none, so only public addresses are fetched.
   */
  allowHosts?: readonly string[];
  /** Redirects followed per download, each one checked like the first URL. Default 5. */
  maxRedirects?: number;
}

export const DEFAULT_MAX_REDIRECTS = 5;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** The policy for one host: built once from its options, asked per hop. */
export class UrlGuard {
  readonly maxRedirects: number;
  private readonly names = new Set<string>();
  private readonly networks = new net.BlockList();

  constructor(options: UrlGuardOptions = {}) {
    this.maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    for (const entry of options.allowHosts ?? []) {
      const [addr, bits, extra] = entry.trim().split('/');
      const fam = net.isIP(addr);
      if (fam && extra === undefined) {
        const max = fam === 4 ? 32 : 128;
        const prefix = bits === undefined ? max : Number(bits);
        if (!/^\d+$/.test(String(prefix)) || prefix > max) throw Errors.BAD_ALLOW_HOST(entry, `the prefix length must be 0-${max}`);
        this.networks.addSubnet(addr, prefix, fam === 4 ? 'ipv4' : 'ipv6');
      } else if (bits === undefined && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(addr)) {
        this.names.add(addr.toLowerCase());
      } else {
        throw Errors.BAD_ALLOW_HOST(entry, 'expected a host name, an IP address or a CIDR such as 10.0.0.0/8');
      }
    }
  }

  /** Throws URL_ADDRESS_REFUSED when `address`, reached through `hostname`, is internal and not allowed. */
  check(url: string, hostname: string, address: string): void {
    const refused = refusedClass(address);
    if (refused === null || this.names.has(hostname.toLowerCase()) || this.networks.check(address, family(address))) return;
    throw Errors.URL_ADDRESS_REFUSED(url, hostname, address, refused);
  }

  /**
   * A `lookup` for http.request: resolves, checks every address, and hands
   * the checked addresses to the socket, so the connection cannot go anywhere
   * the check did not see. Node skips lookup for IP literals: check those first.
   */
  lookupFor(url: string): net.LookupFunction {
    return ((hostname: string, options: dns.LookupOptions, callback: LookupCallback) => {
      dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, '');
        try {
          for (const a of addresses) this.check(url, hostname, a.address);
        } catch (refusal) {
          return callback(refusal as NodeJS.ErrnoException, '');
        }
        if (options.all) return callback(null, addresses);
        return callback(null, addresses[0].address, addresses[0].family);
      });
    }) as net.LookupFunction;
  }
}

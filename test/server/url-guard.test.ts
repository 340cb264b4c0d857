import { UrlGuard, refusedClass } from '../../src/server/url-guard';

test.each([
  ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'], ['::1', 'loopback'], ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:2', 'loopback'],
  ['10.0.0.1', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'], ['::ffff:192.168.1.1', 'private'],
  ['fc00::1', 'unique local'], ['fd12:3456::1', 'unique local'],
  ['169.254.1.1', 'link-local'], ['fe80::1', 'link-local'],
  ['169.254.169.254', 'cloud metadata'], ['fd00:ec2::254', 'cloud metadata'], ['::ffff:169.254.169.254', 'cloud metadata'],
  ['0.0.0.0', 'unspecified'], ['::', 'unspecified'],
  ['224.0.0.1', 'multicast'], ['ff02::1', 'multicast'],
  ['100.64.0.1', 'shared (CGNAT)'], ['100.127.255.254', 'shared (CGNAT)'],
  ['240.0.0.1', 'reserved'],
  ['93.184.216.34', null], ['172.32.0.1', null], ['100.128.0.1', null], ['2606:4700::1111', null], ['::ffff:93.184.216.34', null],
])('%s is %s', (address, kind) => {
  expect(refusedClass(address)).toBe(kind);
});

test('allow-list entries: names match exactly and case-insensitively, networks by prefix', () => {
  const guard = new UrlGuard({ allowHosts: ['Bundles.Internal', '10.1.0.0/16', 'fd12::/16', '127.0.0.1'] });
  expect(() => guard.check('u', 'bundles.internal', '10.9.9.9')).not.toThrow();
  expect(() => guard.check('u', 'x.bundles.internal', '10.9.9.9')).toThrow(/10\.9\.9\.9, which is in the private range/);
  expect(() => guard.check('u', 'other', '10.1.200.3')).not.toThrow();
  expect(() => guard.check('u', 'other', 'fd12:1::5')).not.toThrow();
  expect(() => guard.check('u', '127.0.0.1', '127.0.0.1')).not.toThrow();
  expect(() => guard.check('u', '127.0.0.2', '127.0.0.2')).toThrow(/127\.0\.0\.2 is in the loopback range/);
  expect(() => guard.check('u', 'public', '93.184.216.34')).not.toThrow();
});

test.each(['10.0.0.0/33', 'fd00::/129', 'not a host', '10.0.0.0/8/1', 'http://x'])('allow-list entry %p is refused', (entry) => {
  expect(() => new UrlGuard({ allowHosts: [entry] })).toThrow(expect.objectContaining({ code: 'PLUGHOST_ERR_BAD_ALLOW_HOST' }));
});

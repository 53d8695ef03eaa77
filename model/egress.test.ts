import { describe, expect, it } from 'vitest';
import { forbiddenAddress } from './egress.ts';

describe('forbiddenAddress', () => {
  it.each([
    ['169.254.169.254', false, 'a link-local address (where cloud metadata services answer)'],
    ['::ffff:169.254.169.254', true, 'a link-local address (where cloud metadata services answer)'],
    ['fe80::1', true, 'a link-local address'],
    ['0.0.0.0', true, 'an unspecified address'],
    ['::', true, 'an unspecified address'],
    ['127.0.0.1', false, "a loopback address (the operator's own host)"],
    ['::1', false, "a loopback address (the operator's own host)"],
    ['127.0.0.1', true, undefined],
    ['10.96.0.12', false, undefined],
    ['192.168.1.20', false, undefined],
    ['2001:db8::5', false, undefined],
  ])('%s (loopback allowed: %s) → %s', (ip, allowLoopback, expected) => {
    expect(forbiddenAddress(ip, { allowLoopback })).toBe(expected);
  });
});

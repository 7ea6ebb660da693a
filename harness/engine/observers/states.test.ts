import { describe, expect, it } from 'vitest';
import { namedNetns, pidNetns } from '../../core/netns.js';
import { watchArgs } from './states.js';

describe('state watcher argv', () => {
  it('one process for every namespace, each with its own port and family after its --netns', () => {
    expect(watchArgs([
      { ns: namedNetns('harness-abc-c'), port: 9000, ipv4Only: true },
      { ns: pidNetns(42, 'container:x'), port: 9000 },
    ], 5)).toEqual([
      'watch', '--interval-ms', '5',
      '--netns', '/run/netns/harness-abc-c', '--port', '9000', '--family', '4',
      '--netns', '/proc/42/ns/net', '--port', '9000', '--family', 'all',
    ]);
  });
});

import { describe, expect, test } from 'vitest';
import { builtImageTag, containerName, containerTarget, isHarnessImage, missingImageFix, parseInspect, runLabels } from './container.js';
import { processArgv } from './process.js';

describe('container target: pure parts', () => {
  test('names and labels carry the prefix and the runId (DESIGN §5)', () => {
    expect(containerName('k3j9x2', 'pod')).toBe('harness-k3j9x2-pod');
    expect(containerName('k3j9x2', 'client')).toBe('harness-k3j9x2-client');
    expect(runLabels('k3j9x2', 'target', 'nginx')).toEqual({ 'harness.run': 'k3j9x2', 'harness.role': 'target', 'harness.target': 'nginx' });
  });

  test('built images are tagged by content hash; harness images get the images-build fix', () => {
    expect(builtImageTag('My-Svc', 'abcdef0123456789ffff')).toBe('harness-target/my-svc:abcdef012345');
    expect(isHarnessImage('harness/nginx:local')).toBe(true);
    expect(isHarnessImage('nginx:1.25')).toBe(false);
    expect(missingImageFix('harness/redis:local')).toMatch(/harness images build/);
    expect(missingImageFix('postgres:16')).toMatch(/docker build -t postgres:16 .*docker load/);
  });

  test('docker inspect line', () => {
    expect(parseInspect('12757 running 0\n')).toEqual({ pid: 12757, status: 'running', exitCode: 0 });
    expect(parseInspect('0 exited 2 ')).toEqual({ pid: 0, status: 'exited', exitCode: 2 });
  });

  test('a container target needs exactly one of image and build', () => {
    expect(() => containerTarget({ name: 'x', port: 80 })).toThrow(/exactly one of image or build/);
    expect(() => containerTarget({ name: 'x', port: 80, image: 'a:b', build: '/tmp' })).toThrow(/exactly one/);
    const t = containerTarget({ name: 'x', port: 80, image: 'a:b' });
    expect(t.backend).toBe('container');
    expect(typeof t.check).toBe('function');
  });
});

describe('process target: argv', () => {
  test('runs in its folder with its environment, through env(1), never a shell', () => {
    expect(processArgv({ argv: ['/srv/server', '--port', '7000'], cwd: '/srv', env: { A: '1', B: 'x y' } })).toEqual(['env', '-C', '/srv', 'A=1', 'B=x y', '/srv/server', '--port', '7000']);
    expect(processArgv({ argv: ['python3', '-m', 'http.server'], cwd: '/tmp' })).toEqual(['env', '-C', '/tmp', 'python3', '-m', 'http.server']);
  });
});

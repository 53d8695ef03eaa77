import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  chipFromBrand,
  gpuCoresFromSystemProfiler,
  profileFromLinux,
  profileFromSysctl,
  profileLabels,
} from './profile.ts';

// Outputs recorded on real machines; fixtures/PROVENANCE.md says where each comes from.
const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

describe('macOS: sysctl and system_profiler', () => {
  it.each([
    [
      'MacBook Pro M4, 24 GB',
      'macos-sysctl-macbook-pro-m4-24gb.txt',
      { chip: 'm4', cpuCores: 10, unifiedMemoryGiB: 24 },
    ],
    [
      'Mac mini M4 Pro, 64 GB',
      'macos-sysctl-mac-mini-m4-pro-64gb.txt',
      { chip: 'm4-pro', cpuCores: 14, unifiedMemoryGiB: 64 },
    ],
    [
      'M4 Max (J614c), 64 GB',
      'macos-sysctl-hw-machdep-m4-max-j614c.txt',
      { chip: 'm4-max', cpuCores: 16, unifiedMemoryGiB: 64 },
    ],
    [
      'M3 Max (J514m), 36 GB',
      'macos-sysctl-hw-machdep-m3-max-j514m.txt',
      { chip: 'm3-max', cpuCores: 14, unifiedMemoryGiB: 36 },
    ],
    ['M1 Pro (machdep only)', 'macos-sysctl-machdep-cpu-m1-pro.txt', { chip: 'm1-pro' }],
  ])('%s', (_machine, file, expected) => {
    const profile = profileFromSysctl(fixture(file));
    expect(profile).toMatchObject({ appleSilicon: true, ...expected });
  });

  it('counts performance and efficiency cores when hw.physicalcpu is missing (12-core M4 Pro, 24 GB)', () => {
    const profile = profileFromSysctl(fixture('macos-sysctl-hw-apple-m4-as-posted-12cpu-24gb.txt'));
    // The dump has no brand string: Apple silicon by its efficiency cores, chip unknown, so no chip label.
    expect(profile).toMatchObject({ appleSilicon: true, cpuCores: 12, unifiedMemoryGiB: 24 });
    expect(profile.chip).toBeUndefined();
  });

  it('recognises an M1 by hw.cputype when the brand string is not in the dump', () => {
    expect(profileFromSysctl(fixture('macos-sysctl-cpu-m1.txt'))).toMatchObject({
      appleSilicon: true,
      cpuCores: 8,
    });
  });

  it('reads GPU cores from system_profiler SPDisplaysDataType', () => {
    expect(gpuCoresFromSystemProfiler(fixture('macos-spdisplays-grep-macbook-pro-m4-24gb.txt'))).toBe(10);
    const profile = profileFromSysctl(
      fixture('macos-sysctl-macbook-pro-m4-24gb.txt'),
      fixture('macos-spdisplays-grep-macbook-pro-m4-24gb.txt'),
    );
    expect(profileLabels(profile)).toEqual({
      'aurora.health/apple-silicon': 'true',
      'aurora.health/chip': 'm4',
      'aurora.health/cpu-cores': '10',
      'aurora.health/gpu-cores': '10',
      'aurora.health/unified-memory-gib': '24',
      'aurora.health/virtualized': null,
    });
  });

  it.each([
    ['Apple M4', 'm4'],
    ['Apple M4 Pro', 'm4-pro'],
    ['Apple M2 Max', 'm2-max'],
    ['Apple M2 Ultra', undefined],
    ['Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz', undefined],
    [undefined, undefined],
  ])('brand %s → %s', (brand, chip) => {
    expect(chipFromBrand(brand)).toBe(chip);
  });
});

describe('Linux: /proc/cpuinfo and the device tree', () => {
  it('Asahi on a Mac mini M1: Apple implementer, part 0x022', () => {
    const profile = profileFromLinux({ cpuinfo: fixture('linux-cpuinfo-asahi-mac-mini-m1.txt') });
    expect(profile).toMatchObject({
      appleSilicon: true,
      chip: 'm1',
      cpuCores: 3,
      evidence: 'CPU part 0x022',
    });
  });

  it('Asahi on a MacBook Pro M1: the device tree names the SoC (t8103)', () => {
    const compatible = fixture('linux-device-tree-compatible-asahi-macbook-pro-m1.txt');
    const profile = profileFromLinux({ cpuinfo: '', deviceTreeCompatible: compatible });
    expect(profile).toMatchObject({ appleSilicon: true, chip: 'm1', evidence: 'device tree apple,t8103' });
    // The kernel exposes the list NUL-separated; the fixture keeps one entry per line.
    expect(
      profileFromLinux({ cpuinfo: '', deviceTreeCompatible: compatible.split('\n').join('\0') }).chip,
    ).toBe('m1');
  });

  it.each([
    ['a Fedora VM on an M3 Max', 'linux-cpuinfo-vm-on-m3-max-fedora.txt', 2],
    ['a UTM VM on a MacBook Air M1', 'linux-cpuinfo-vm-utm-on-macbook-air-m1.txt', undefined],
  ])('%s: Apple silicon, chip hidden by the hypervisor', (_vm, file, cores) => {
    const profile = profileFromLinux({ cpuinfo: fixture(file) });
    expect(profile.appleSilicon).toBe(true);
    expect(profile.chip).toBeUndefined();
    if (cores) expect(profile.cpuCores).toBe(cores);
    expect(profileLabels(profile)['aurora.health/chip']).toBeNull();
  });

  it('a VM: labelled virtualized, with the memory it was given rounded down, never up', () => {
    const cpuinfo = fixture('linux-cpuinfo-vm-on-m3-max-fedora.txt');
    // A 12 GiB VM (MemTotal a little under 12 GiB) must not claim the 16 GiB a Mac would have.
    const profile = profileFromLinux({ cpuinfo, meminfo: 'MemTotal:       12163184 kB\n' });
    expect(profile).toMatchObject({ appleSilicon: true, virtualized: true, unifiedMemoryGiB: 11 });
    expect(profileLabels(profile)['aurora.health/virtualized']).toBe('true');
  });

  it('bare metal with a CPU part newer than the table is still the metal, chip unknown', () => {
    const cpuinfo = 'processor\t: 0\nCPU implementer\t: 0x61\nCPU part\t: 0x062\n';
    const profile = profileFromLinux({ cpuinfo, meminfo: 'MemTotal:       32195512 kB\n' });
    expect(profile).toMatchObject({ appleSilicon: true, unifiedMemoryGiB: 32 });
    expect(profile.virtualized).toBeUndefined();
    expect(profile.chip).toBeUndefined();
  });

  it('an Ultra (t6002, two Max dies reporting Max parts) gets no chip label rather than a wrong one', () => {
    const cpuinfo = 'processor\t: 0\nCPU implementer\t: 0x61\nCPU part\t: 0x028\n';
    const profile = profileFromLinux({
      cpuinfo,
      deviceTreeCompatible: 'apple,j375d\0apple,t6002\0apple,arm-platform\0',
    });
    expect(profile.chip).toBeUndefined();
    expect(profile.virtualized).toBeUndefined();
    expect(profile.evidence).toBe('device tree apple,t6002 (a chip without an Aurora label)');
  });

  it('an x86 server is not Apple silicon and loses any stale profile labels', () => {
    const cpuinfo = 'processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n';
    const profile = profileFromLinux({ cpuinfo });
    expect(profile.appleSilicon).toBe(false);
    expect(Object.values(profileLabels(profile)).every((v) => v === null)).toBe(true);
  });

  it('rounds MemTotal up to the unified memory size the machine was sold with', () => {
    const cpuinfo = fixture('linux-cpuinfo-asahi-mac-mini-m1.txt');
    // MemTotal is what the kernel manages: a little less than the installed memory.
    expect(profileFromLinux({ cpuinfo, meminfo: 'MemTotal:       16067780 kB\n' }).unifiedMemoryGiB).toBe(16);
    expect(profileFromLinux({ cpuinfo, meminfo: 'MemTotal:       24391220 kB\n' }).unifiedMemoryGiB).toBe(24);
    expect(profileFromLinux({ cpuinfo }).unifiedMemoryGiB).toBeUndefined();
  });
});

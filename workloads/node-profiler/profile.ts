import { type AppleChip, nodeLabels } from '../../crds/labels.ts';

/** What the profiler learned of a machine; undefined fields were not found and get no label. */
export interface MachineProfile {
  appleSilicon: boolean;
  chip?: AppleChip;
  cpuCores?: number;
  gpuCores?: number;
  unifiedMemoryGiB?: number;
  /** A Linux VM on a Mac: its memory is what the VM was given, not the machine's. */
  virtualized?: boolean;
  /** How the chip was recognised, for the log. */
  evidence: string;
}

/** Apple SoC device-tree names (Asahi Linux): see fixtures/CHIP-IDS.md for the sources. */
const socChips: Record<string, AppleChip> = {
  t8103: 'm1',
  t6000: 'm1-pro',
  t6001: 'm1-max',
  t8112: 'm2',
  t6020: 'm2-pro',
  t6021: 'm2-max',
  t8122: 'm3',
  t6030: 'm3-pro',
  t6031: 'm3-max',
  t6034: 'm3-max',
  t8132: 'm4',
  t6040: 'm4-pro',
  t6041: 'm4-max',
};

/** Apple CPU part numbers (MIDR), efficiency and performance cores alike, by chip. */
const partChips: Record<number, AppleChip> = {
  34: 'm1',
  35: 'm1',
  36: 'm1-pro',
  37: 'm1-pro',
  40: 'm1-max',
  41: 'm1-max',
  50: 'm2',
  51: 'm2',
  52: 'm2-pro',
  53: 'm2-pro',
  56: 'm2-max',
  57: 'm2-max',
  66: 'm3',
  67: 'm3',
  68: 'm3-pro',
  69: 'm3-pro',
  72: 'm3-max',
  73: 'm3-max',
  82: 'm4',
  83: 'm4',
  84: 'm4-pro',
  85: 'm4-pro',
  88: 'm4-max',
  89: 'm4-max',
};

const appleImplementer = 0x61;
/** Unified memory sizes Apple sells, in GiB: the kernel's MemTotal is rounded up to one of these. */
const memorySizesGiB = [8, 16, 18, 24, 32, 36, 48, 64, 96, 128, 192, 256, 512];

/** "Apple M4 Pro" → m4-pro; undefined for anything else. */
export function chipFromBrand(brand: string | undefined): AppleChip | undefined {
  const match = /^Apple (M[1-9])(?: (Pro|Max))?$/.exec(brand?.trim() ?? '');
  if (!match) return undefined;
  const chip = `${match[1]?.toLowerCase()}${match[2] ? `-${match[2].toLowerCase()}` : ''}`;
  return Object.values(socChips).includes(chip as AppleChip) ? (chip as AppleChip) : undefined;
}

/** `key: value` lines, as sysctl and /proc print them (any spacing around the colon). */
function keyValues(text: string): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    values.set(key, [...(values.get(key) ?? []), value]);
  }
  return values;
}

const positiveInt = (text: string | undefined) => {
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? n : undefined;
};

/** GPU cores from `system_profiler SPDisplaysDataType` ("Total Number of Cores: 10"). */
export function gpuCoresFromSystemProfiler(text: string | undefined): number | undefined {
  return positiveInt(/Total Number of Cores:\s*(\d+)/.exec(text ?? '')?.[1]);
}

/** A Mac running macOS: `sysctl` output and, when available, `system_profiler SPDisplaysDataType`. */
export function profileFromSysctl(sysctl: string, displays?: string): MachineProfile {
  const kv = keyValues(sysctl);
  const first = (key: string) => kv.get(key)?.[0];
  const brand = first('machdep.cpu.brand_string');
  const chip = chipFromBrand(brand);
  const memBytes = Number(first('hw.memsize'));
  // Without a brand string: hw.cputype 16777228 is CPU_TYPE_ARM64, and only Apple silicon has
  // efficiency cores (Intel Macs report no perflevels).
  const appleSilicon =
    first('hw.perflevel1.name') === 'Efficiency' ||
    chip !== undefined ||
    first('hw.cputype') === '16777228' ||
    /^Apple M/.test(brand ?? '');
  const perfCores =
    (positiveInt(first('hw.perflevel0.physicalcpu')) ?? 0) +
    (positiveInt(first('hw.perflevel1.physicalcpu')) ?? 0);
  const cpuCores =
    positiveInt(first('hw.physicalcpu')) ?? (perfCores || undefined) ?? positiveInt(first('hw.ncpu'));
  const gpuCores = gpuCoresFromSystemProfiler(displays);
  return {
    appleSilicon,
    ...(chip ? { chip } : {}),
    ...(cpuCores ? { cpuCores } : {}),
    ...(gpuCores ? { gpuCores } : {}),
    ...(Number.isFinite(memBytes) && memBytes > 0
      ? { unifiedMemoryGiB: Math.round(memBytes / 2 ** 30) }
      : {}),
    evidence: brand ? `sysctl brand "${brand}"` : 'sysctl hw.cputype and perflevels',
  };
}

/**
 * Linux on a Mac (Asahi on the metal, or a VM): /proc/cpuinfo, the device tree's compatible list
 * (NUL- or newline-separated) and /proc/meminfo. Inside a VM the CPU part reads 0x000, so the chip
 * is unknown: the node is still Apple silicon, but pools that name chips will not pick it.
 */
export function profileFromLinux(input: {
  cpuinfo: string;
  deviceTreeCompatible?: string;
  meminfo?: string;
}): MachineProfile {
  const processors = input.cpuinfo.split(/\n\s*\n/).filter((block) => /^processor\s*:/m.test(block));
  const cpus = processors.map((block) => keyValues(block));
  const implementers = cpus.map((kv) => Number(kv.get('CPU implementer')?.[0]));
  const appleCpu = implementers.length > 0 && implementers.every((i) => i === appleImplementer);
  const compatible = (input.deviceTreeCompatible ?? '').split(/[\0\n]/).map((s) => s.trim());
  // The SoC the device tree names decides; one Aurora has no chip label for (an Ultra) gets none,
  // rather than the label of the Max dies its cores report.
  const soc = compatible.map((c) => /^apple,(t[0-9]{4})$/.exec(c)?.[1]).find((s) => s !== undefined);
  const allParts = cpus.map((kv) => Number(kv.get('CPU part')?.[0]));
  const parts = allParts.filter((p) => partChips[p]);
  const chip = soc ? socChips[soc] : parts[0] !== undefined ? partChips[parts[0]] : undefined;
  const appleSilicon = appleCpu || soc !== undefined;
  // A hypervisor hides the cores' part numbers (0x000 on every one); bare metal shows them, known or
  // not (a chip newer than the table is still the metal).
  const virtualized = appleCpu && soc === undefined && allParts.length > 0 && allParts.every((p) => p === 0);
  const memKiB = Number(/^MemTotal:\s+(\d+) kB/m.exec(input.meminfo ?? '')?.[1]);
  const memGiB = memKiB / 2 ** 20;
  // On the metal the kernel keeps a little out of MemTotal: the machine has the next size Apple sells.
  // A VM has what it was given, rounded down, never more.
  const unifiedMemoryGiB =
    memGiB > 0
      ? virtualized
        ? Math.floor(memGiB)
        : (memorySizesGiB.find((size) => size >= memGiB) ?? Math.ceil(memGiB))
      : undefined;
  return {
    appleSilicon,
    ...(chip ? { chip } : {}),
    ...(processors.length ? { cpuCores: processors.length } : {}),
    ...(unifiedMemoryGiB ? { unifiedMemoryGiB } : {}),
    ...(virtualized ? { virtualized } : {}),
    evidence: soc
      ? `device tree apple,${soc}${socChips[soc] ? '' : ' (a chip without an Aurora label)'}`
      : parts.length
        ? `CPU part 0x${parts[0]?.toString(16).padStart(3, '0')}`
        : appleCpu
          ? 'CPU implementer 0x61 (part hidden, as in a VM)'
          : 'not an Apple CPU',
  };
}

/**
 * The node labels for a profile. Labels the profile cannot vouch for are removed (null), so a machine
 * that changed, or a node that is not a Mac, carries no stale profile.
 */
export function profileLabels(profile: MachineProfile): Record<string, string | null> {
  if (!profile.appleSilicon) {
    return Object.fromEntries(Object.values(nodeLabels).map((l) => [l, null]));
  }
  const value = (n: number | string | undefined) => (n === undefined ? null : String(n));
  return {
    [nodeLabels.appleSilicon]: 'true',
    [nodeLabels.chip]: value(profile.chip),
    [nodeLabels.cpuCores]: value(profile.cpuCores),
    [nodeLabels.gpuCores]: value(profile.gpuCores),
    [nodeLabels.unifiedMemoryGiB]: value(profile.unifiedMemoryGiB),
    [nodeLabels.virtualized]: profile.virtualized ? 'true' : null,
  };
}

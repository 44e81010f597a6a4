/**
 * /proc/PID/maps and /proc/PID/smaps read as data: the one parser for the
 * scenario program in the guest, the host's reports and the conformance
 * cases (which read the agent's own files through the agent).
 *
 * The format is fs/proc/task_mmu.c (6.1 and 6.12 alike): show_map_vma()
 * prints "start-end perms offset major:minor inode" in hex (the inode in
 * decimal), pads, then the path or a name such as [heap]; smaps follows each
 * such line with "Name:  value" fields, VmFlags last (show_smap_vma_flags():
 * two letters per vm_flags bit, in bit order).
 */

/** One vma as a line of /proc/PID/maps shows it. */
export interface MapsEntry {
  /** The whole line, as the kernel printed it. */
  line: string;
  start: bigint;
  end: bigint;
  /** "rwxp": r/w/x from vm_flags, then 's' for VM_MAYSHARE or 'p'. */
  perms: string;
  /** vm_pgoff in bytes (for a COW remap_pfn_range mapping: the first PFN's physical address). */
  offset: bigint;
  /** "major:minor" as maps prints it (two hex digits each at least). */
  dev: string;
  /** Decimal, as printed. */
  inode: string;
  /** The mapped file's path, a name such as [heap] or [stack], or '' for anonymous memory. */
  path: string;
}

/** One vma as /proc/PID/smaps shows it: its maps line and the fields below it. */
export interface SmapsEntry extends MapsEntry {
  /** The VmFlags letters, in the order printed (vm_flags bit order). */
  flags: ReadonlySet<string>;
  /** Every "Name: value" field, the value as printed ("4 kB", "0", "rd wr sh"). */
  fields: ReadonlyMap<string, string>;
  /** Rss and Locked in kB; -1 when the field is missing. */
  rss: number;
  locked: number;
}

const MAPS_LINE = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/;
const SMAPS_FIELD = /^(\w+):\s*(.*)$/;

/** A maps line (or the header line of an smaps entry); undefined for anything else. */
export function parseMapsLine(line: string): MapsEntry | undefined {
  const match = MAPS_LINE.exec(line);
  if (match === null) return undefined;
  return {
    line,
    start: BigInt(`0x${match[1]!}`),
    end: BigInt(`0x${match[2]!}`),
    perms: match[3]!,
    offset: BigInt(`0x${match[4]!}`),
    dev: match[5]!,
    inode: match[6]!,
    path: match[7]!.trim(),
  };
}

/** Every vma of a maps text, in the order printed (lowest address first). */
export function parseMaps(text: string): MapsEntry[] {
  return text.split('\n').flatMap((line) => parseMapsLine(line) ?? []);
}

/** "VmFlags: rd wr sh" or "rd wr sh" (the field's value) to its letter pairs, in order. */
export function vmFlagLetters(text: string): string[] {
  return text.replace(/^VmFlags:/, '').trim().split(/\s+/).filter((word) => word !== '');
}

const kB = (value: string | undefined): number => (value === undefined ? -1 : Number.parseInt(value, 10));

/** Every vma of an smaps text with its fields, in the order printed. */
export function parseSmaps(text: string): SmapsEntry[] {
  const entries: { maps: MapsEntry; fields: Map<string, string> }[] = [];
  for (const line of text.split('\n')) {
    const maps = parseMapsLine(line);
    if (maps !== undefined) {
      entries.push({ maps, fields: new Map() });
      continue;
    }
    const field = SMAPS_FIELD.exec(line);
    if (field !== null) entries.at(-1)?.fields.set(field[1]!, field[2]!.trim());
  }
  return entries.map(({ maps, fields }) => ({
    ...maps,
    flags: new Set(vmFlagLetters(fields.get('VmFlags') ?? '')),
    fields,
    rss: kB(fields.get('Rss')),
    locked: kB(fields.get('Locked')),
  }));
}

/** The vma that starts at `address`, if any. */
export function vmaStartingAt<T extends MapsEntry>(entries: readonly T[], address: bigint): T | undefined {
  return entries.find((entry) => entry.start === address);
}

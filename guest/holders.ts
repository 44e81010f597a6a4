/**
 * Who holds a file in the guest: every open fd and every mapping, of any
 * process, that refers to it. A case about what happens when the last fd
 * or the last other mapping of a device goes (catalogue D1, D5) uses it to
 * prove that nothing else kept the device alive, rather than assume it.
 *
 * Read from /proc/PID/fd and /proc/PID/map_files (the agent runs as root,
 * which map_files needs: proc_map_files_get_link, 6.1 and 6.12), each entry
 * stat()ed through its link, so that a device node is recognised by its
 * device number whatever path it was opened by.
 */
import { type Stats, readFileSync, readdirSync, statSync } from 'node:fs';
import type { Holder } from './protocol.js';

/** What makes two paths the same file here: a device node's number, any other file's inode. */
function identity(stats: Stats): string {
  return stats.isCharacterDevice() || stats.isBlockDevice() ? `${stats.isCharacterDevice() ? 'c' : 'b'}${stats.rdev}` : `${stats.dev}:${stats.ino}`;
}

/** The entries of a /proc directory, or none when the process (or the directory) went away meanwhile. */
function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The identity of what a /proc link points at; undefined when it is gone or cannot be stat()ed (a socket's fd can). */
function linked(link: string): string | undefined {
  try {
    return identity(statSync(link));
  } catch {
    return undefined;
  }
}

export function holders(paths: readonly string[]): Holder[] {
  // A path that does not exist is the caller's mistake, not "no holders": statSync throws it.
  const wanted = new Set(paths.map((file) => identity(statSync(file))));
  const found: Holder[] = [];
  for (const pid of entries('/proc').filter((name) => /^\d+$/.test(name))) {
    const matches = (kind: Holder['kind'], dir: string): Holder[] =>
      entries(`/proc/${pid}/${dir}`)
        .filter((name) => wanted.has(linked(`/proc/${pid}/${dir}/${name}`) ?? ''))
        .map((name) => ({ pid: Number(pid), comm: '', kind, name }));
    const held = [...matches('fd', 'fd'), ...matches('mapping', 'map_files')];
    if (held.length === 0) continue;
    const comm = (() => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        return '?';
      }
    })();
    found.push(...held.map((holder) => ({ ...holder, comm })));
  }
  return found;
}

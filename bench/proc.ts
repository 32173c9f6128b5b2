/** Reading processes from Linux's /proc for the benches. */
import { readFileSync } from 'node:fs';

/** User + system CPU ms of a process (its /proc stat; USER_HZ 100). 0 when it is gone, or on a system without /proc. */
export function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

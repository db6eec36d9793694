// CPU seconds a server has used, read from /proc: the process, the children it has reaped
// (cutime/cstime: PostgreSQL's backends that ended), and every live descendant (its backends).
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = 100;  // USER_HZ on Linux

function statFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');  // fields from the 3rd (state) on
  } catch {
    return null;  // gone between listing and reading
  }
}

function childrenOf() {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(name);
    if (!fields) continue;
    const ppid = Number(fields[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  return children;
}

/** Total CPU seconds of the process tree rooted at pid (its own, reaped and live children). */
export function treeCpuSeconds(pid) {
  const children = childrenOf();
  let ticks = 0;
  const visit = (p, root) => {
    const f = statFields(p);
    if (!f) return;
    // f[11..14] are utime, stime, cutime, cstime (fields 14-17 of proc(5)).
    ticks += Number(f[11]) + Number(f[12]);
    if (root) ticks += Number(f[13]) + Number(f[14]);
    for (const c of children.get(p) || []) visit(c, false);
  };
  visit(pid, true);
  return ticks / TICKS_PER_SECOND;
}

/** CPU seconds this Node process has used (user + system). */
export function ownCpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Parses the text of /sys/kernel/tracing/trace written by the function_graph
 * tracer into call trees, one list of top-level items per trace:
 *
 *    1)    node-153    |               |  __x64_sys_mmap() {
 *    1)    node-153    |   1.970 us    |    cap_mmap_file();
 *    1)    node-153    | + 21.930 us   |  }
 *    1)    node-153    |               |  /* page_fault_user: address=0x7f.. ip=.. error_code=0x4 *\/
 *
 * Format (kernel/trace/trace_functions_graph.c): "CPU)", the task column
 * when options/funcgraph-proc is set, an optional delay mark (+ ! # * @ $),
 * the duration, "|", then the call indented two spaces per level: "f() {"
 * opens, "}" (optionally followed by a comment naming the function) closes,
 * "f();" is a leaf. Comments are trace_marker writes and trace events.
 * The tracer interleaves tasks; one call stack is kept per task (per CPU
 * when the task column is missing), so a traced fork parses correctly.
 */

export interface GraphNode {
  name: string;
  /** The module, for functions printed as "name [module]". */
  module?: string;
  /** Duration in microseconds; undefined when the call did not end within the trace. */
  durationUs?: number;
  children: GraphNode[];
  /** Trace events and markers printed inside this call, in order. */
  comments: string[];
  /** 1-based line of the entry in the raw trace. */
  line: number;
}

export type TraceItem =
  | { type: 'call'; task: string; cpu: number; node: GraphNode }
  | { type: 'comment'; task: string; cpu: number; text: string; line: number };

export interface ParsedTrace {
  /** Top-level calls and comments in trace order. */
  items: TraceItem[];
  /** Tasks seen ("comm-pid"), in order of first appearance. */
  tasks: string[];
  /** Lines that looked like trace lines but could not be understood. */
  skipped: number;
}

const LINE = /^\s*(\d+)\)\s*(?:(\S(?:.*?\S)?)-(\d+)\s*\|)?\s*([+!#*@$])?\s*(?:(\d+(?:\.\d+)?)\s*us)?\s*\|\s?(.*)$/;
const OPEN = /^([\w.$]+)(?: \[([\w-]+)\])?\(\)\s*\{$/;
const LEAF = /^([\w.$]+)(?: \[([\w-]+)\])?\(\);$/;
const CLOSE = /^\}(?:\s*\/\*\s*([\w.$]+).*\*\/)?$/;
const COMMENT = /^\/\*\s?(.*?)\s?\*\/$/;

export function parseFunctionGraph(text: string): ParsedTrace {
  const items: TraceItem[] = [];
  const tasks: string[] = [];
  const stacks = new Map<string, GraphNode[]>();
  let skipped = 0;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!;
    if (raw.startsWith('#') || raw.trim() === '' || /^\s*-{5,}\s*$/.test(raw)) continue;
    const match = LINE.exec(raw);
    if (!match) {
      if (!/=>/.test(raw)) skipped++;
      continue;
    }
    const cpu = Number(match[1]);
    const task = match[2] !== undefined ? `${match[2]}-${match[3]!}` : `cpu${cpu}`;
    const duration = match[5] !== undefined ? Number(match[5]) : undefined;
    const content = match[6]!.trim();
    if (match[2] !== undefined && !tasks.includes(task)) tasks.push(task);
    let stack = stacks.get(task);
    if (stack === undefined) stacks.set(task, (stack = []));
    const top = stack[stack.length - 1];
    const place = (node: GraphNode): void => {
      if (top !== undefined) top.children.push(node);
      else items.push({ type: 'call', task, cpu, node });
    };
    let part: RegExpExecArray | null;
    if ((part = OPEN.exec(content))) {
      const node: GraphNode = { name: part[1]!, children: [], comments: [], line: index + 1 };
      if (part[2] !== undefined) node.module = part[2];
      place(node);
      stack.push(node);
    } else if ((part = LEAF.exec(content))) {
      const node: GraphNode = { name: part[1]!, children: [], comments: [], line: index + 1 };
      if (part[2] !== undefined) node.module = part[2];
      if (duration !== undefined) node.durationUs = duration;
      place(node);
    } else if (CLOSE.test(content)) {
      // A "}" whose "{" came before the trace began has nothing to close.
      const node = stack.pop();
      if (node !== undefined && duration !== undefined) node.durationUs = duration;
    } else if ((part = COMMENT.exec(content))) {
      if (top !== undefined) top.comments.push(part[1]!);
      else items.push({ type: 'comment', task, cpu, text: part[1]!, line: index + 1 });
    } else {
      skipped++;
    }
  }
  return { items, tasks, skipped };
}

/** Depth-first walk: every node with its path from the root. */
export function* walk(node: GraphNode, path: GraphNode[] = []): Generator<{ node: GraphNode; path: GraphNode[] }> {
  yield { node, path };
  for (const child of node.children) yield* walk(child, [...path, node]);
}

/** The first node named `name` below (or at) `node`, with its path. */
export function findCall(node: GraphNode, name: string): { node: GraphNode; path: GraphNode[] } | undefined {
  for (const entry of walk(node)) if (entry.node.name === name) return entry;
  return undefined;
}

/** Every function name in a tree. */
export function namesIn(node: GraphNode): Set<string> {
  const names = new Set<string>();
  for (const { node: each } of walk(node)) names.add(each.name);
  return names;
}

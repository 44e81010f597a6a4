/**
 * The explain report as one self-contained HTML file: inline CSS and SVG,
 * no script, no external resource, so it opens offline in any browser.
 */
import { svgPicture } from './address-space.js';
import { COMPARISON_TITLE, type KernelComparison } from './compare.js';
import type { ReportModel } from './report.js';
import { formatUs } from '../trace/tree.js';
import { decodeVmFlags, setByFor } from '../trace/vmflags.js';

export const escapeHtml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const CSS = `
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 2px solid #ddd; } h3 { margin-bottom: .3em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 12px; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 7px; vertical-align: top; text-align: left; }
th { background: #eee; }
.fn { font-family: monospace; background: #eef3fb; padding: 0 4px; border-radius: 3px; margin-right: 4px; display: inline-block; }
.drv { background: #ffe2c4; }
.story { color: #555; font-style: italic; }
.v-holds { background: #d8f5d8; } .v-not { background: #fbd9d9; } .v-part { background: #fff1c2; }
.step { border-left: 4px solid #8fb3d9; padding-left: 1em; margin: 1.5em 0; }
small { color: #666; }
`;

const verdictClass = (verdict: string): string => (verdict === 'holds' ? 'v-holds' : verdict === 'does not hold' ? 'v-not' : 'v-part');

export function renderHtml(model: ReportModel): string {
  const { evidence, device, file } = model;
  const parts: string[] = [];
  parts.push(
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(model.title)}</title><style>${CSS}</style></head><body>`,
    `<h1>${escapeHtml(model.title)}</h1>`,
    `<p><small>Recorded ${escapeHtml(evidence.when)} in the mmapkit guest (function_graph limited to the scenario process; roots __x64_sys_mmap and handle_mm_fault). ` +
      `Device under study: <code>${escapeHtml(evidence.device)}</code> (${escapeHtml(device.targetKind)}); regular file: <code>${escapeHtml(evidence.file)}</code> on tmpfs.</small></p>`,
    '<nav><a href="#space">Address space</a> · <a href="#walk">Step by step</a> · <a href="#claims">Claims checked</a></nav>',
  );

  parts.push('<h2 id="space">Where the mapping landed</h2>', svgPicture(model.regions));
  parts.push(`<p>The picture is not to scale: regions are drawn in address order, the highest first, with the size of each gap written between them.</p>`);

  parts.push('<h2 id="walk">The mmap path, step by step</h2>');
  for (const step of model.steps) {
    parts.push(`<div class="step"><h3>${escapeHtml(step.title)}</h3><p class="story">${escapeHtml(step.story)}</p>`);
    parts.push(
      '<p>Kernel functions seen in this run: ' +
        (step.functions.length === 0
          ? '<em>none</em>'
          : step.functions
              .map((f) => `<span class="fn${f.module !== undefined ? ' drv' : ''}">${escapeHtml(f.name)}${f.module !== undefined ? ` [${escapeHtml(f.module)}]` : ''} <small>${escapeHtml(f.seenIn)}${f.durationUs !== undefined ? `, ${formatUs(f.durationUs)}` : ''}</small></span>`)
              .join(' ')) +
        '</p>',
    );
    if (step.title.startsWith('4.')) {
      parts.push(vmFlagsTable('device', device.mapping.vmFlags ?? '', device.targetKind), vmFlagsTable('tmpfs file', file.mapping.vmFlags ?? '', 'file'));
      parts.push(`<pre>${escapeHtml(step.evidence.filter((line) => !line.startsWith('  ')).join('\n'))}</pre>`);
    } else if (step.title.startsWith('5.')) {
      parts.push(pfnTable(model));
      parts.push(`<pre>${escapeHtml(step.evidence.filter((line) => !line.startsWith('  page')).join('\n'))}</pre>`);
    } else if (step.title.startsWith('6.')) {
      parts.push(faultTable(model));
    } else if (step.evidence.length > 0) {
      parts.push(`<pre>${escapeHtml(step.evidence.join('\n'))}</pre>`);
    }
    for (const tree of step.trees) parts.push(`<p>${escapeHtml(tree.title)}:</p><pre>${escapeHtml(tree.lines.join('\n'))}</pre>`);
    parts.push('</div>');
  }

  parts.push('<h2 id="claims">Claims checked</h2>', '<table><tr><th>claim</th><th>what the kernel did in this run</th><th>device</th><th>file</th><th>verdict</th></tr>');
  const mark = (value: boolean | null): string => (value === null ? 'n/a' : value ? 'yes' : 'no');
  for (const claim of model.claims) {
    parts.push(
      `<tr><td>${escapeHtml(claim.claim)}</td><td>${escapeHtml(claim.observed)}</td><td>${mark(claim.device)}</td><td>${mark(claim.file)}</td>` +
        `<td class="${verdictClass(claim.verdict)}"><b>${escapeHtml(claim.verdict)}</b></td></tr>`,
    );
  }
  parts.push('</table>');
  const raws = [evidence.deviceTrace.path, evidence.fileTrace.path].filter((p): p is string => p !== undefined);
  if (raws.length > 0) parts.push(`<p><small>Raw traces: ${raws.map((p) => `<code>${escapeHtml(p)}</code>`).join(', ')}</small></p>`);
  parts.push('</body></html>\n');
  return parts.join('\n');
}

function vmFlagsTable(title: string, vmFlags: string, kind: string): string {
  const rows = decodeVmFlags(vmFlags).map(
    (flag) => `<tr><td><code>${escapeHtml(flag.letters)}</code></td><td>${escapeHtml(flag.flag)}</td><td>${escapeHtml(flag.meaning)}</td><td>${escapeHtml(setByFor(flag.letters, kind))}</td></tr>`,
  );
  return `<p>smaps VmFlags of the ${escapeHtml(title)} mapping: <code>${escapeHtml(vmFlags)}</code></p><table><tr><th>letters</th><th>flag</th><th>meaning</th><th>set by</th></tr>${rows.join('')}</table>`;
}

function pfnTable(model: ReportModel): string {
  const rows = model.device.mapping.pages.map((page, i) => {
    const filePage = model.file.mapping.pages[i];
    return (
      `<tr><td>${page.index}</td><td>${escapeHtml(page.driverPfn ?? '?')}</td><td>${page.present === true ? escapeHtml(page.pagemapPfn ?? '?') : 'not present (catalogue H3)'}</td>` +
      `<td>${escapeHtml(filePage?.pagemapPfn ?? '')}${filePage?.present === true ? (filePage.file === true ? ' (file page)' : ' (anon)') : ''}</td></tr>`
    );
  });
  return (
    `<table><tr><th>page</th><th>${escapeHtml(model.device.targetKind)} device: PFN the driver reports (ioctl)</th><th>device: pagemap PFN</th><th>tmpfs file: pagemap PFN</th></tr>${rows.join('')}</table>` +
    '<p>pagemap never exposes VM_PFNMAP pages (catalogue H3): the driver ioctl is the only way to see the device PFNs.</p>'
  );
}

function faultTable(model: ReportModel): string {
  const rows = model.all.map(
    (m) =>
      `<tr><td>${escapeHtml(m.targetKind === 'file' ? 'tmpfs file' : `${m.targetKind} device`)}</td><td>${m.pages}</td><td>${m.firstTouchFaults}</td><td>${m.secondTouchFaults}</td>` +
      `<td>${m.driverFaults ?? ''}</td><td>${m.residentBefore}/${m.pages}</td><td>${m.presentBefore} → ${m.presentAfter}</td></tr>`,
  );
  return (
    '<table><tr><th>target</th><th>pages touched</th><th>minor faults, first touch</th><th>second touch</th><th>driver faults_served</th><th>resident before (mincore)</th><th>present in pagemap</th></tr>' +
    `${rows.join('')}</table>`
  );
}

/**
 * The combined page of `mmapkit explain --kernels`: the comparison computed
 * from every kernel's run, with links to each kernel's own report.
 */
export function renderComparisonHtml(model: KernelComparison, reports: { kernel: string; href: string }[]): string {
  const parts: string[] = [];
  const title = `mmapkit explain: ${COMPARISON_TITLE.toLowerCase()}, ${model.kernels.join(' vs ')}`;
  parts.push(
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>`,
    `<h1>${escapeHtml(title)}</h1>`,
    '<p><small>Every line below is computed from the traces and measurements each kernel\'s explain run took in this command; ' +
      'the lock functions (lock_vma_under_rcu, lock_mm_and_find_vma) are traced as graph roots of their own, just before each handle_mm_fault.</small></p>',
    `<p>Per-kernel reports: ${reports.map((report) => `<a href="${escapeHtml(report.href)}">${escapeHtml(report.kernel)}</a>`).join(' · ')}</p>`,
    '<h2 id="comparison">What differs</h2><ul>',
    ...model.summary.map((line) => `<li>${escapeHtml(line)}</li>`),
    '</ul>',
  );
  const head = `<tr><th></th>${model.kernels.map((kernel) => `<th>${escapeHtml(kernel)}</th>`).join('')}</tr>`;
  parts.push('<h2 id="locks">Fault locking</h2><table>', head);
  for (const row of model.locks) {
    parts.push(
      `<tr><td>${escapeHtml(row.label)}</td>${row.perKernel
        .map((entry) => `<td>${entry.faults} fault(s); lock functions <code>${escapeHtml(entry.lockFunctions.join(', ') || 'none')}</code>; retried ${entry.retried}<br>${escapeHtml(entry.summary)}</td>`)
        .join('')}</tr>`,
    );
  }
  parts.push('</table>', '<h2 id="functions">Functions on one kernel\'s path only</h2><table>', `<tr><th>path</th><th>in common</th>${model.kernels.map((kernel) => `<th>only on ${escapeHtml(kernel)}</th>`).join('')}</tr>`);
  for (const row of model.functions) {
    parts.push(
      `<tr><td>${escapeHtml(row.path)}</td><td>${row.common.length}</td>${row.only
        .map((entry) => `<td>${entry.names.map((name) => `<span class="fn">${escapeHtml(name)}</span>`).join(' ') || '<em>none</em>'}</td>`)
        .join('')}</tr>`,
    );
  }
  parts.push('</table>', '<h2 id="vmflags">VmFlags</h2><table>', `<tr><th>mapping</th>${model.kernels.map((kernel) => `<th>${escapeHtml(kernel)}</th>`).join('')}<th>same?</th></tr>`);
  for (const row of model.flags) {
    parts.push(`<tr><td>${escapeHtml(row.label)}</td>${row.perKernel.map((entry) => `<td><code>${escapeHtml(entry.flags)}</code></td>`).join('')}<td class="${row.same ? 'v-holds' : 'v-not'}">${row.same ? 'identical' : 'different'}</td></tr>`);
  }
  parts.push('</table>');
  if (model.fork.length > 0) {
    parts.push('<h2 id="fork">Fork after copy-on-write (MAP_PRIVATE remap mapping)</h2><table><tr><th>kernel</th><th>first page written</th><th>a later page written</th></tr>');
    for (const entry of model.fork) parts.push(`<tr><td>${escapeHtml(entry.kernel)}</td><td>${escapeHtml(entry.firstPage)}</td><td>${escapeHtml(entry.laterPage)}</td></tr>`);
    parts.push('</table>');
  }
  parts.push('<h2 id="timings">Timings</h2><p><small>One run each, under TCG with function_graph on: indicative only.</small></p><table>', head);
  for (const row of model.timings) parts.push(`<tr><td>${escapeHtml(row.what)}</td>${row.perKernel.map((entry) => `<td>${entry.us === undefined ? 'n/a' : escapeHtml(formatUs(entry.us))}</td>`).join('')}</tr>`);
  parts.push('</table>');
  for (const source of model.sources) if (source.paths.length > 0) parts.push(`<p><small>Raw traces of ${escapeHtml(source.kernel)}: ${source.paths.map((p) => `<code>${escapeHtml(p)}</code>`).join(', ')}</small></p>`);
  parts.push('</body></html>\n');
  return parts.join('\n');
}

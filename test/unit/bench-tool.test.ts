import { describe, expect, it } from 'vitest';
import { parseToolBenchArgs } from '../../tools/bench/tool-command.js';
import { BOOT_PHASES, bootPhases, bootTimestamps, parseLogLine } from '../../tools/bench/tool-phases.js';
import { renderToolReport, toolFigures, type ToolBenchResults } from '../../tools/bench/tool-report.js';
import type { BootSample, ToolSamples } from '../../tools/bench/tool-run.js';

/** A 6.1 guest's kernel log around /init, as the agent's kmsg request gives it (trimmed). */
const LOG = [
  '[    0.000000] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org)',
  '[    3.268934] Freeing unused kernel image (initmem) memory: 2824K',
  '[    3.437882] Run /init as init process',
  '[    3.437890]   with arguments:',
  '[    3.437895]     /init',
  '[    3.603282] mmapkit-init: at init 3.57',
  '[    3.663851] calling  virtio_init+0x0/0x20 [virtio] @ 92',
  '[    3.967018] mmapkit-init: at modules 3.94',
  '[    4.219464] mmapkit-init: at root 4.19',
  '    a continuation line with no timestamp',
];

describe('bench --tool: boot phases from the guest kernel log', () => {
  it('parses dmesg-style lines and leaves continuation lines out', () => {
    expect(parseLogLine('[    3.437882] Run /init as init process')).toEqual({ at: 3.437882, text: 'Run /init as init process' });
    expect(parseLogLine('[12345.000001] x')).toEqual({ at: 12345.000001, text: 'x' });
    expect(parseLogLine('    a continuation line')).toBeUndefined();
  });

  it("finds /init's start, init.sh's markers and the offset between the two guest clocks", () => {
    const stamps = bootTimestamps(LOG);
    expect(stamps.runInit).toBe(3.437882);
    expect(stamps.markers).toEqual({ init: 3.603282, modules: 3.967018, resume: 3.967018, root: 4.219464 });
    // The last marker's uptime (4.19) less its record's printk time.
    expect(stamps.uptimeOffset).toBeCloseTo(4.19 - 4.219464, 9);
  });

  it('splits the host boot time into phases that add up to it', () => {
    const stamps = bootTimestamps(LOG);
    const phases = bootPhases(stamps, 7.6, 5.2);
    expect(Object.keys(phases)).toEqual([...BOOT_PHASES]);
    // The host's 7.6 s less the ready message's time on the printk clock.
    expect(phases.qemu).toBeCloseTo(7.6 - (5.2 - (4.19 - 4.219464)), 9);
    expect(phases.kernel).toBe(3.437882);
    expect(phases.init).toBeCloseTo(0.1654, 9);
    expect(phases.modules).toBeCloseTo(0.363736, 9);
    expect(phases.mounts).toBeCloseTo(0.252446, 9);
    // Ready at uptime 5.2 is printk time 5.2 - offset; the agent phase runs from the root marker to it.
    expect(phases.agent).toBeCloseTo(5.2 - (4.19 - 4.219464) - 4.219464, 9);
    const sum = Object.values(phases).reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(7.6, 9);
  });

  it('gives a restored guest a restore phase in place of the boot phases before its go', () => {
    const phases = bootPhases(bootTimestamps(LOG), 3.0, 5.2, true);
    expect([phases.qemu, phases.kernel, phases.init, phases.modules]).toEqual([0, 0, 0, 0]);
    // Without a resume marker (no hold point in LOG) the go is at the modules marker.
    expect(phases.restore).toBeCloseTo(3.0 - (5.2 - (4.19 - 4.219464) - 3.967018), 9);
    expect(Object.values(phases).reduce((a, b) => a + b, 0)).toBeCloseTo(3.0, 9);
  });

  it('names what is missing instead of inventing a phase', () => {
    expect(() => bootTimestamps(LOG.filter((line) => !line.includes('Run /init')))).toThrow(/Run \/init/);
    expect(() => bootTimestamps(LOG.filter((line) => !line.includes('at modules')))).toThrow(/marker for modules/);
    // A marker init.sh does not write is ignored, not taken for one it does.
    expect(() => bootTimestamps([...LOG.filter((line) => !line.includes('at root')), '[ 4.3] mmapkit-init: at rooted 4.2'])).toThrow(/root/);
  });
});

function boot(hostBootS: number, ping: number[]): BootSample {
  return {
    hostBootS,
    readyUptimeS: hostBootS - 1,
    phases: { qemu: 1, kernel: 2, init: 0.5, modules: 0.5, restore: 0.1, mounts: 0.4, agent: hostBootS - 4.5 },
    roundTrips: { ping, native: ping, kmsg: ping, exec: ping.map((ns) => ns * 10) },
  };
}

describe('bench --tool: figures and table', () => {
  const samples: ToolSamples = {
    boots: { A: [boot(6, [1e6, 2e6]), boot(8, [3e6]), boot(7, [2e6])], B: [boot(3, [1e6]), boot(4, [1e6]), boot(3.5, [1e6])] },
    baselineNs: [100e6, 200e6, 300e6, 200e6, 200e6, 100e6],
  };

  it('summarises each figure over the boots, as a ratio to A and per baseline', () => {
    const figures = toolFigures(samples);
    const bootFigure = figures.find((figure) => figure.name === 'boot')!;
    expect(bootFigure.variants.map((variant) => [variant.name, variant.time.median, variant.ratio])).toEqual([
      ['A', 7e9, 1],
      ['B', 3.5e9, 0.5],
    ]);
    expect(bootFigure.perBaseline).toBe(35); // 7 s over the baseline's 200 ms median
    const ping = figures.find((figure) => figure.name === 'ping')!;
    expect(ping.variants[0]!.time.samples).toBe(4); // every request of every boot
    expect(ping.variants[0]!.time.median).toBe(2e6);
    expect(figures.map((figure) => figure.name)).toEqual(['boot', ...BOOT_PHASES, 'ping', 'native', 'kmsg', 'exec']);
  });

  it('with A alone there is one column of figures', () => {
    const figures = toolFigures({ ...samples, boots: { A: samples.boots.A! } });
    expect(figures.every((figure) => figure.variants.length === 1 && figure.variants[0]!.ratio === 1)).toBe(true);
  });

  it('prints the baseline beside the figures and B/A when comparing', () => {
    const results: ToolBenchResults = {
      tool: 'mmapkit bench --tool',
      version: 1,
      startedAt: '2026-11-30T15:00:00.000Z',
      durationS: 60,
      environment: { accelerator: 'tcg', kernel: '6.1.0-57-amd64', qemu: 'QEMU 7.2', hostCpu: 'CPU (2 host CPUs)', loadAverage: { start: [2], end: [3] } },
      settings: { boots: 3, requests: 10, variants: [{ name: 'A', kernelArgs: [] }, { name: 'B', kernelArgs: ['tsc=reliable'] }] },
      baseline: { work: 'SHA-256', time: { median: 200e6, min: 1e8, max: 3e8, q1: 1.5e8, q3: 2e8, spread: 0.25, samples: 6 } },
      figures: toolFigures(samples),
      samples,
    };
    const table = renderToolReport(results);
    expect(table).toMatch(/machine baseline: 200 ms ±13% \(SHA-256\)/);
    expect(table).toMatch(/^B: kernel command line \+ tsc=reliable$/m);
    expect(table).toMatch(/interleaved ABAB\.\.\./);
    expect(table).toMatch(/^boot to agent ready \(host clock\)\s+7\.00 s ±\d+%\s+35\.0\s+3\.50 s ±\d+%\s+0\.500$/m);
  });
});

describe('bench --tool: options', () => {
  it('defaults to variant A alone; each --variant adds the next with its words', () => {
    expect(parseToolBenchArgs([]).variants).toEqual([{ name: 'A', kernelArgs: [] }]);
    const flags = parseToolBenchArgs(['--boots', '4', '--requests', '20', '--variant', ' tsc=reliable  cryptomgr.notests=1 ', '--variant', 'quiet']);
    expect(flags).toMatchObject({ boots: 4, requests: 20 });
    expect(flags.variants.slice(1)).toEqual([
      { name: 'B', kernelArgs: ['tsc=reliable', 'cryptomgr.notests=1'] },
      { name: 'C', kernelArgs: ['quiet'] },
    ]);
  });

  it('adds the restored guest as the last variant with --restored; A and the others boot', () => {
    const flags = parseToolBenchArgs(['--restored', '--variant', 'quiet']);
    expect(flags.variants).toEqual([
      { name: 'A', kernelArgs: [] },
      { name: 'B', kernelArgs: ['quiet'] },
      { name: 'C', kernelArgs: [], restore: true },
    ]);
  });

  it('refuses bad values in one line', () => {
    expect(() => parseToolBenchArgs(['--boots', '0'])).toThrow(/--boots takes a positive whole number/);
    expect(() => parseToolBenchArgs(['--variant', '  '])).toThrow(/--variant takes kernel command-line words/);
    expect(() => parseToolBenchArgs(['--icount'])).toThrow(/icount/);
  });
});

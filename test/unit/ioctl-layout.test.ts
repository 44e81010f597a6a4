// guest/ioctl-layout.ts and the family layouts of test/profiles/real/setups/:
// the encoding itself, then every request number, struct size and field
// offset checked against the C headers installed on this machine, as the
// compiler sees them (a C program is built and run), never against numbers
// written down from memory.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cString, decode, encode, io, ior, iow, iowr, s32, struct, u16, u32, u64, u8 } from '../../guest/ioctl-layout.js';
import * as alsa from '../profiles/real/setups/alsa.js';
import * as dmabuf from '../profiles/real/setups/dmabuf.js';
import * as drm from '../profiles/real/setups/drm.js';
import * as v4l2 from '../profiles/real/setups/v4l2.js';

describe('request numbers', () => {
  it('pack direction, size, type and number as _IOC does', () => {
    expect(io('A', 0x12)).toBe(0x4112n);
    expect(ior('V', 0, 104)).toBe(0x80685600n);
    expect(iow('u', 0x42, 24)).toBe(0x40187542n);
    expect(iowr('V', 9, 88)).toBe(0xc0585609n);
    expect(iowr(0x48, 0, 24)).toBe(iowr('H', 0, 24));
  });

  it.each([
    [() => ior('VV', 0, 4), /one character or a byte/],
    [() => ior(256, 0, 4), /one character or a byte/],
    [() => ior('V', 256, 4), /nr must be a byte/],
    [() => ior('V', 0, 1 << 14), /size must be below 2\^14/],
  ])('refuses what _IOC cannot hold (%#)', (call, message) => {
    expect(call).toThrow(RangeError);
    expect(call).toThrow(message);
  });
});

describe('struct layouts', () => {
  const layout = struct('example', 24, { a: u8(0), b: u16(2), c: u32(4), d: s32(8), e: u64(16) });

  it('encode then decode gives the values back, with everything else zero', () => {
    const values = { a: 0xab, b: 0xbeef, c: 0xdeadbeef, d: -2, e: 0xfedcba9876543210n };
    const bytes = encode(layout, values);
    expect(bytes).toHaveLength(24);
    expect(decode(layout, bytes)).toEqual(values);
    expect(bytes.subarray(12, 16)).toEqual(Buffer.alloc(4));
    expect(bytes.readUInt32LE(4)).toBe(0xdeadbeef);
    expect(decode(layout, encode(layout, {}))).toEqual({ a: 0, b: 0, c: 0, d: 0, e: 0n });
  });

  it('refuses a field outside the struct or over another', () => {
    expect(() => struct('s', 8, { a: u64(4) })).toThrow('s.a lies outside its 8 bytes');
    expect(() => struct('s', 16, { a: u64(0), b: u32(4) })).toThrow('s.a overlaps s.b');
  });

  it('refuses a value of the wrong kind or size, and bytes of another size', () => {
    expect(() => encode(layout, { e: 1 as unknown as bigint })).toThrow('example.e is a 64-bit field: give a BigInt');
    expect(() => encode(layout, { c: 1n as unknown as number })).toThrow('example.c is a 32-bit field: give a number');
    expect(() => encode(layout, { a: 256 })).toThrow(RangeError);
    expect(() => decode(layout, Buffer.alloc(23))).toThrow('example is 24 bytes, not 23');
  });

  it('reads a NUL-terminated char array', () => {
    const bytes = Buffer.alloc(32);
    bytes.write('vivid', 16, 'latin1');
    expect(cString(bytes, 16, 16)).toBe('vivid');
    expect(cString(Buffer.from('abcd'), 0, 4)).toBe('abcd');
  });
});

describe('the V4L2 fourcc and the ALSA hw_params helpers', () => {
  it('v4l2_fourcc puts the first character in the low byte', () => {
    expect(v4l2.fourcc('YUYV')).toBe(0x56595559);
  });

  it('anyHwParams allows everything; setMask and setInterval fix one value', () => {
    const params = alsa.anyHwParams();
    expect(alsa.maskBits(params, alsa.HW_PARAM.FORMAT)).toHaveLength(256);
    expect(alsa.interval(params, alsa.HW_PARAM.RATE)).toEqual({ min: 0, max: 0xffffffff, integer: false, empty: false });
    alsa.setMask(params, alsa.HW_PARAM.FORMAT, alsa.SNDRV_PCM_FORMATS.S16_LE);
    alsa.setMask(params, alsa.HW_PARAM.ACCESS, 33);
    alsa.setInterval(params, alsa.HW_PARAM.RATE, 48000);
    expect(alsa.maskBits(params, alsa.HW_PARAM.FORMAT)).toEqual([2]);
    expect(alsa.maskBits(params, alsa.HW_PARAM.ACCESS)).toEqual([33]);
    expect(alsa.interval(params, alsa.HW_PARAM.RATE)).toEqual({ min: 48000, max: 48000, integer: true, empty: false });
    expect(decode(alsa.hwParams, params)).toMatchObject({ rmask: 0xffffffff, cmask: 0, info: 0xffffffff });
    expect(() => alsa.interval(params, alsa.HW_PARAM.FORMAT)).toThrow('hw param 1 is not an interval');
  });
});

/** What the C compiler says, name by name, for the headers under /usr/include. */
const C_PROGRAM = String.raw`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <linux/videodev2.h>
#include <linux/udmabuf.h>
#include <linux/dma-heap.h>
#include <sound/asound.h>
#define N(x) printf("%s %llu\n", #x, (unsigned long long)(x));
#define S(s) printf("sizeof %s %zu\n", #s, sizeof(struct s));
#define O(s, f) printf("%s.%s %zu\n", #s, #f, offsetof(struct s, f));
int main(void)
{
	N(VIDIOC_QUERYCAP) N(VIDIOC_S_FMT) N(VIDIOC_REQBUFS) N(VIDIOC_QUERYBUF)
	N(V4L2_CAP_VIDEO_CAPTURE) N(V4L2_CAP_STREAMING) N(V4L2_CAP_DEVICE_CAPS)
	N(V4L2_BUF_TYPE_VIDEO_CAPTURE) N(V4L2_MEMORY_MMAP)
	N(UDMABUF_CREATE) N(UDMABUF_FLAGS_CLOEXEC) N(DMA_HEAP_IOCTL_ALLOC)
	N(SNDRV_PCM_IOCTL_PVERSION) N(SNDRV_PCM_IOCTL_INFO) N(SNDRV_PCM_IOCTL_HW_REFINE) N(SNDRV_PCM_IOCTL_HW_PARAMS)
	N(SNDRV_PCM_ACCESS_MMAP_INTERLEAVED) N(SNDRV_PCM_SUBFORMAT_STD) N(SNDRV_PCM_FORMAT_U8) N(SNDRV_PCM_FORMAT_S16_LE)
	N(SNDRV_PCM_STREAM_PLAYBACK) N(SNDRV_PCM_MMAP_OFFSET_DATA)
	N(SNDRV_PCM_HW_PARAM_ACCESS) N(SNDRV_PCM_HW_PARAM_FORMAT) N(SNDRV_PCM_HW_PARAM_SUBFORMAT)
	N(SNDRV_PCM_HW_PARAM_SAMPLE_BITS) N(SNDRV_PCM_HW_PARAM_FRAME_BITS) N(SNDRV_PCM_HW_PARAM_CHANNELS)
	N(SNDRV_PCM_HW_PARAM_RATE) N(SNDRV_PCM_HW_PARAM_PERIOD_TIME) N(SNDRV_PCM_HW_PARAM_PERIOD_SIZE)
	N(SNDRV_PCM_HW_PARAM_PERIOD_BYTES) N(SNDRV_PCM_HW_PARAM_PERIODS) N(SNDRV_PCM_HW_PARAM_BUFFER_TIME)
	N(SNDRV_PCM_HW_PARAM_BUFFER_SIZE) N(SNDRV_PCM_HW_PARAM_BUFFER_BYTES) N(SNDRV_PCM_HW_PARAM_TICK_TIME)
	N(MFD_ALLOW_SEALING) N(F_ADD_SEALS) N(F_SEAL_SHRINK)
	S(v4l2_capability) O(v4l2_capability, capabilities) O(v4l2_capability, device_caps) O(v4l2_capability, card)
	S(v4l2_format) O(v4l2_format, fmt.pix.width) O(v4l2_format, fmt.pix.height) O(v4l2_format, fmt.pix.pixelformat)
	O(v4l2_format, fmt.pix.field) O(v4l2_format, fmt.pix.bytesperline) O(v4l2_format, fmt.pix.sizeimage)
	S(v4l2_requestbuffers) O(v4l2_requestbuffers, count) O(v4l2_requestbuffers, type) O(v4l2_requestbuffers, memory)
	O(v4l2_requestbuffers, capabilities)
	S(v4l2_buffer) O(v4l2_buffer, index) O(v4l2_buffer, type) O(v4l2_buffer, bytesused) O(v4l2_buffer, flags)
	O(v4l2_buffer, field) O(v4l2_buffer, sequence) O(v4l2_buffer, memory) O(v4l2_buffer, m.offset) O(v4l2_buffer, length)
	S(udmabuf_create) O(udmabuf_create, memfd) O(udmabuf_create, flags) O(udmabuf_create, offset) O(udmabuf_create, size)
	S(dma_heap_allocation_data) O(dma_heap_allocation_data, len) O(dma_heap_allocation_data, fd)
	O(dma_heap_allocation_data, fd_flags) O(dma_heap_allocation_data, heap_flags)
	S(snd_pcm_hw_params) O(snd_pcm_hw_params, masks) O(snd_pcm_hw_params, intervals) O(snd_pcm_hw_params, rmask)
	O(snd_pcm_hw_params, cmask) O(snd_pcm_hw_params, info) O(snd_pcm_hw_params, msbits) O(snd_pcm_hw_params, rate_num)
	O(snd_pcm_hw_params, rate_den) O(snd_pcm_hw_params, fifo_size) S(snd_mask) S(snd_interval)
	S(snd_pcm_info) O(snd_pcm_info, stream) O(snd_pcm_info, card) O(snd_pcm_info, name)
	{
		/* The interval's bit-fields: which bit each lands in. */
		struct snd_interval i = { 0 };
		i.integer = 1;
		printf("snd_interval.integer_bit %u\n", __builtin_ctz(((unsigned int *)&i)[2]));
		i.integer = 0;
		i.empty = 1;
		printf("snd_interval.empty_bit %u\n", __builtin_ctz(((unsigned int *)&i)[2]));
	}
	return 0;
}
`;

describe('against the C headers (/usr/include, compiled here)', () => {
  let dir: string;
  const c = new Map<string, bigint>();
  const at = (name: string): number => {
    const value = c.get(name);
    if (value === undefined) throw new Error(`the C program printed no ${name}`);
    return Number(value);
  };
  const number = (name: string): bigint => BigInt(at(name));

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mmapkit-ioctl-layout-'));
    writeFileSync(path.join(dir, 'layout.c'), C_PROGRAM);
    // A compiler is a prerequisite of the whole project (the driver, the addon): its absence is an error here too.
    execFileSync('cc', ['-Wall', '-Werror', '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
    for (const line of execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' }).trim().split('\n')) {
      const match = /^(.+) (\d+)$/.exec(line);
      if (match === null) throw new Error(`unexpected line from the C program: ${line}`);
      c.set(match[1]!, BigInt(match[2]!));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('V4L2: request numbers, constants, struct sizes and offsets', () => {
    expect(v4l2.VIDIOC_QUERYCAP).toBe(number('VIDIOC_QUERYCAP'));
    expect(v4l2.VIDIOC_S_FMT).toBe(number('VIDIOC_S_FMT'));
    expect(v4l2.VIDIOC_REQBUFS).toBe(number('VIDIOC_REQBUFS'));
    expect(v4l2.VIDIOC_QUERYBUF).toBe(number('VIDIOC_QUERYBUF'));
    // Written down once by hand in the brief of issue #11; the compiler must agree.
    expect([v4l2.VIDIOC_REQBUFS, v4l2.VIDIOC_QUERYBUF]).toEqual([0xc0145608n, 0xc0585609n]);
    expect([v4l2.V4L2_CAP_VIDEO_CAPTURE, v4l2.V4L2_CAP_STREAMING, v4l2.V4L2_CAP_DEVICE_CAPS]).toEqual(
      ['V4L2_CAP_VIDEO_CAPTURE', 'V4L2_CAP_STREAMING', 'V4L2_CAP_DEVICE_CAPS'].map(at),
    );
    expect([v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE, v4l2.V4L2_MEMORY_MMAP]).toEqual([at('V4L2_BUF_TYPE_VIDEO_CAPTURE'), at('V4L2_MEMORY_MMAP')]);
    expect(v4l2.capability.size).toBe(at('sizeof v4l2_capability'));
    expect(v4l2.capability.fields.capabilities.offset).toBe(at('v4l2_capability.capabilities'));
    expect(v4l2.capability.fields.deviceCaps.offset).toBe(at('v4l2_capability.device_caps'));
    expect(at('v4l2_capability.card')).toBe(16);
    expect(v4l2.format.size).toBe(at('sizeof v4l2_format'));
    for (const field of ['width', 'height', 'pixelformat', 'field', 'bytesperline', 'sizeimage'] as const) {
      expect(v4l2.format.fields[field].offset, field).toBe(at(`v4l2_format.fmt.pix.${field}`));
    }
    expect(v4l2.requestBuffers.size).toBe(at('sizeof v4l2_requestbuffers'));
    for (const field of ['count', 'type', 'memory', 'capabilities'] as const) {
      expect(v4l2.requestBuffers.fields[field].offset, field).toBe(at(`v4l2_requestbuffers.${field}`));
    }
    expect(v4l2.buffer.size).toBe(at('sizeof v4l2_buffer'));
    for (const field of ['index', 'type', 'bytesused', 'flags', 'field', 'sequence', 'memory', 'length'] as const) {
      expect(v4l2.buffer.fields[field].offset, field).toBe(at(`v4l2_buffer.${field}`));
    }
    expect(v4l2.buffer.fields.offset.offset).toBe(at('v4l2_buffer.m.offset'));
  });

  it('dma-buf exporters: UDMABUF_CREATE, DMA_HEAP_IOCTL_ALLOC and their structs', () => {
    expect(dmabuf.UDMABUF_CREATE).toBe(number('UDMABUF_CREATE'));
    expect(dmabuf.UDMABUF_FLAGS_CLOEXEC).toBe(at('UDMABUF_FLAGS_CLOEXEC'));
    expect(dmabuf.DMA_HEAP_IOCTL_ALLOC).toBe(number('DMA_HEAP_IOCTL_ALLOC'));
    expect(dmabuf.udmabufCreate.size).toBe(at('sizeof udmabuf_create'));
    for (const field of ['memfd', 'flags', 'offset', 'size'] as const) {
      expect(dmabuf.udmabufCreate.fields[field].offset, field).toBe(at(`udmabuf_create.${field}`));
    }
    expect(dmabuf.heapAllocation.size).toBe(at('sizeof dma_heap_allocation_data'));
    const heapFields = { len: 'len', fd: 'fd', fdFlags: 'fd_flags', heapFlags: 'heap_flags' } as const;
    for (const [field, cName] of Object.entries(heapFields)) {
      expect(dmabuf.heapAllocation.fields[field as keyof typeof heapFields].offset, field).toBe(at(`dma_heap_allocation_data.${cName}`));
    }
  });

  it('ALSA PCM: request numbers, parameter indices, hw_params and info layouts', () => {
    expect(alsa.SNDRV_PCM_IOCTL_PVERSION).toBe(number('SNDRV_PCM_IOCTL_PVERSION'));
    expect(alsa.SNDRV_PCM_IOCTL_INFO).toBe(number('SNDRV_PCM_IOCTL_INFO'));
    expect(alsa.SNDRV_PCM_IOCTL_HW_REFINE).toBe(number('SNDRV_PCM_IOCTL_HW_REFINE'));
    expect(alsa.SNDRV_PCM_IOCTL_HW_PARAMS).toBe(number('SNDRV_PCM_IOCTL_HW_PARAMS'));
    expect(alsa.SNDRV_PCM_ACCESS_MMAP_INTERLEAVED).toBe(at('SNDRV_PCM_ACCESS_MMAP_INTERLEAVED'));
    expect(alsa.SNDRV_PCM_SUBFORMAT_STD).toBe(at('SNDRV_PCM_SUBFORMAT_STD'));
    expect(alsa.SNDRV_PCM_FORMATS).toEqual({ U8: at('SNDRV_PCM_FORMAT_U8'), S16_LE: at('SNDRV_PCM_FORMAT_S16_LE') });
    expect(alsa.SNDRV_PCM_STREAM_PLAYBACK).toBe(at('SNDRV_PCM_STREAM_PLAYBACK'));
    expect(alsa.SNDRV_PCM_MMAP_OFFSET_DATA).toBe(number('SNDRV_PCM_MMAP_OFFSET_DATA'));
    for (const [name, index] of Object.entries(alsa.HW_PARAM)) expect(index, name).toBe(at(`SNDRV_PCM_HW_PARAM_${name}`));
    expect(alsa.hwParams.size).toBe(at('sizeof snd_pcm_hw_params'));
    expect([alsa.MASKS_AT, alsa.INTERVALS_AT]).toEqual([at('snd_pcm_hw_params.masks'), at('snd_pcm_hw_params.intervals')]);
    expect([alsa.MASK_BYTES, alsa.INTERVAL_BYTES]).toEqual([at('sizeof snd_mask'), at('sizeof snd_interval')]);
    const hwFields = { rmask: 'rmask', cmask: 'cmask', info: 'info', msbits: 'msbits', rateNum: 'rate_num', rateDen: 'rate_den', fifoSize: 'fifo_size' } as const;
    for (const [field, cName] of Object.entries(hwFields)) {
      expect(alsa.hwParams.fields[field as keyof typeof hwFields].offset, field).toBe(at(`snd_pcm_hw_params.${cName}`));
    }
    // setInterval and interval() read the bit-fields where the compiler put them.
    const params = alsa.anyHwParams();
    alsa.setInterval(params, alsa.HW_PARAM.CHANNELS, 2);
    const flags = params.readUInt32LE(alsa.INTERVALS_AT + (alsa.HW_PARAM.CHANNELS - alsa.HW_PARAM.SAMPLE_BITS) * alsa.INTERVAL_BYTES + 8);
    expect(flags).toBe(1 << at('snd_interval.integer_bit'));
    params.writeUInt32LE(1 << at('snd_interval.empty_bit'), alsa.INTERVALS_AT + 8);
    expect(alsa.interval(params, alsa.HW_PARAM.SAMPLE_BITS).empty).toBe(true);
    expect(alsa.pcmInfo.size).toBe(at('sizeof snd_pcm_info'));
    expect([alsa.pcmInfo.fields.stream.offset, alsa.pcmInfo.fields.card.offset, 80]).toEqual(
      [at('snd_pcm_info.stream'), at('snd_pcm_info.card'), at('snd_pcm_info.name')],
    );
  });

  it('the memfd and seal constants the addon exports are the C library\'s', async () => {
    const { loadNative } = await import('../../native/index.js');
    const { constants } = loadNative();
    expect([constants.MFD_ALLOW_SEALING, constants.F_ADD_SEALS, constants.F_SEAL_SHRINK]).toEqual(
      ['MFD_ALLOW_SEALING', 'F_ADD_SEALS', 'F_SEAL_SHRINK'].map(at),
    );
  });
});

/**
 * DRM's uapi headers are not in /usr/include without libdrm-dev; the guest kernel's own headers
 * (linux-headers-*-common, installed by set-up) carry them, and the layouts are the same on every
 * series. Any installed set is used; none is a missing prerequisite, an error.
 */
describe('DRM dumb buffers against the kernel\'s uapi headers (compiled here)', () => {
  it('request numbers, struct sizes and field offsets', () => {
    const common = readdirSync('/usr/src').filter((name) => /^linux-headers-.+-common$/.test(name)).sort();
    expect(common, 'no linux-headers-*-common under /usr/src: run make setup').not.toEqual([]);
    const dir = mkdtempSync(path.join(tmpdir(), 'mmapkit-drm-layout-'));
    try {
      writeFileSync(
        path.join(dir, 'drm.c'),
        `#include <stdio.h>
#include <stddef.h>
#include <drm_mode.h>
#define N(x) printf("%s %llu\\n", #x, (unsigned long long)(x));
int main(void) {
	N(DRM_IOCTL_MODE_CREATE_DUMB) N(DRM_IOCTL_MODE_MAP_DUMB)
	N(sizeof(struct drm_mode_create_dumb)) N(offsetof(struct drm_mode_create_dumb, handle))
	N(offsetof(struct drm_mode_create_dumb, size)) N(sizeof(struct drm_mode_map_dumb))
	N(offsetof(struct drm_mode_map_dumb, offset))
	return 0;
}
`,
      );
      execFileSync('cc', ['-Wall', '-Werror', '-D__user=', '-I', path.join('/usr/src', common.at(-1)!, 'include/uapi/drm'), '-o', path.join(dir, 'drm'), path.join(dir, 'drm.c')]);
      const printed = new Map(
        execFileSync(path.join(dir, 'drm'), { encoding: 'utf8' })
          .trim()
          .split('\n')
          .map((line) => [line.slice(0, line.lastIndexOf(' ')), BigInt(line.slice(line.lastIndexOf(' ') + 1))] as const),
      );
      expect(drm.DRM_IOCTL_MODE_CREATE_DUMB).toBe(printed.get('DRM_IOCTL_MODE_CREATE_DUMB'));
      expect(drm.DRM_IOCTL_MODE_MAP_DUMB).toBe(printed.get('DRM_IOCTL_MODE_MAP_DUMB'));
      expect(BigInt(drm.createDumb.size)).toBe(printed.get('sizeof(struct drm_mode_create_dumb)'));
      expect(BigInt(drm.createDumb.fields.handle.offset)).toBe(printed.get('offsetof(struct drm_mode_create_dumb, handle)'));
      expect(BigInt(drm.createDumb.fields.size.offset)).toBe(printed.get('offsetof(struct drm_mode_create_dumb, size)'));
      expect(BigInt(drm.mapDumb.size)).toBe(printed.get('sizeof(struct drm_mode_map_dumb)'));
      expect(BigInt(drm.mapDumb.fields.offset.offset)).toBe(printed.get('offsetof(struct drm_mode_map_dumb, offset)'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The family setups of test/profiles/real/setups/ against a scripted addon:
// the ioctls they send, what they make of the answers, their refusals, and
// that a failure closes what they opened. The drivers themselves are tried
// in the guest (test/profiles/real/README.md has the evidence).
import { describe, expect, it } from 'vitest';
import type { NativeFunctions } from '../../native/api.js';
import type { SetupContext, SetupObject, TargetSetup } from '../../guest/setup-api.js';
import { type Values, decode, encode } from '../../guest/ioctl-layout.js';
import alsaSetup, * as alsa from '../profiles/real/setups/alsa.js';
import dmabufSetup, * as dmabuf from '../profiles/real/setups/dmabuf.js';
import v4l2Setup, * as v4l2 from '../profiles/real/setups/v4l2.js';

const PAGE = 4096;
const C = { O_RDWR: 2, O_CLOEXEC: 0x80000, MFD_ALLOW_SEALING: 2, F_ADD_SEALS: 0x409, F_SEAL_SHRINK: 2 };

type IoctlAnswerer = (request: bigint, arg: Buffer) => { result?: number; arg?: Buffer };

/** An addon whose ioctl answers as `answer` says, recording every open, close and ioctl. */
function fakeContext(device: string, params: Record<string, unknown>, answer: IoctlAnswerer) {
  const calls: string[] = [];
  const open = new Set<number>();
  let next = 10;
  const native = {
    open: (path: string) => {
      calls.push(`open ${path}`);
      open.add(next);
      return next++;
    },
    close: (fd: number) => {
      calls.push(`close ${fd}`);
      open.delete(fd);
    },
    memfdCreate: () => {
      calls.push('memfd_create');
      open.add(next);
      return next++;
    },
    ftruncate: (_fd: number, length: bigint) => void calls.push(`ftruncate ${length}`),
    fcntl: (_fd: number, cmd: number, arg: number) => {
      calls.push(`fcntl ${cmd} ${arg}`);
      return 0;
    },
    ioctl: (_fd: number, request: bigint, arg: Uint8Array) => {
      calls.push(`ioctl 0x${request.toString(16)}`);
      const got = answer(request, Buffer.from(arg));
      return { result: got.result ?? 0, arg: got.arg ?? Buffer.from(arg) };
    },
  } as unknown as NativeFunctions;
  const context = { native, c: C, pageSize: PAGE, device, params } as unknown as SetupContext;
  return { context, calls, open };
}

const enotty = (): never => {
  throw Object.assign(new Error('ENOTTY: inappropriate ioctl for device, ioctl'), { code: 'ENOTTY' });
};

function openWith(setup: TargetSetup, context: SetupContext): SetupObject {
  return setup.open(context);
}

describe('v4l2.ts', () => {
  const captureNode: IoctlAnswerer = (request, arg) => {
    if (request === v4l2.VIDIOC_QUERYCAP) {
      const caps = v4l2.V4L2_CAP_VIDEO_CAPTURE | v4l2.V4L2_CAP_STREAMING;
      return { arg: encode(v4l2.capability, { capabilities: (caps | v4l2.V4L2_CAP_DEVICE_CAPS) >>> 0, deviceCaps: caps }) };
    }
    if (request === v4l2.VIDIOC_S_FMT) {
      const asked = decode(v4l2.format, arg);
      return { arg: encode(v4l2.format, { ...asked, bytesperline: asked.width * 2, sizeimage: asked.width * 2 * asked.height }) };
    }
    if (request === v4l2.VIDIOC_REQBUFS) return { arg: encode(v4l2.requestBuffers, { ...decode(v4l2.requestBuffers, arg), count: 3 }) };
    if (request === v4l2.VIDIOC_QUERYBUF) {
      const { index } = decode(v4l2.buffer, arg);
      return { arg: encode(v4l2.buffer, { index, offset: index * 0x8000, length: 320 * 2 * 180 }) };
    }
    return enotty();
  };

  it('maps the last buffer the driver granted, its length rounded up to pages, reachable by a reopen', () => {
    const fake = fakeContext('/dev/video0', { width: 320, height: 180, count: 2 }, captureNode);
    expect(openWith(v4l2Setup, fake.context)).toEqual({ fd: 10, fds: [10], offset: 2n * 0x8000n, size: 29n * 4096n, reach: 'reopen' });
    expect(fake.calls).toEqual(['open /dev/video0', ...[v4l2.VIDIOC_QUERYCAP, v4l2.VIDIOC_S_FMT, v4l2.VIDIOC_REQBUFS, v4l2.VIDIOC_QUERYBUF].map((r) => `ioctl 0x${r.toString(16)}`)]);
  });

  it('refuses a node that does not capture, a format the driver changed, and unknown parameters, closing the node', () => {
    const output = fakeContext('/dev/video1', {}, (request) =>
      request === v4l2.VIDIOC_QUERYCAP ? { arg: encode(v4l2.capability, { capabilities: 0x2 }) } : enotty(),
    );
    expect(() => openWith(v4l2Setup, output.context)).toThrow(expect.objectContaining({ code: 'ENODEV', message: expect.stringMatching(/^\/dev\/video1 .* is not a streaming capture node/) }));
    expect(output.open.size).toBe(0);
    const adjusting = fakeContext('/dev/video0', { width: 333, height: 180 }, (request, arg) =>
      request === v4l2.VIDIOC_S_FMT ? { arg: encode(v4l2.format, { ...decode(v4l2.format, arg), width: 320 }) } : captureNode(request, arg),
    );
    expect(() => openWith(v4l2Setup, adjusting.context)).toThrow(/VIDIOC_S_FMT gave 320x180/);
    expect(adjusting.open.size).toBe(0);
    expect(() => openWith(v4l2Setup, fakeContext('/dev/video0', { widht: 1 }, captureNode).context)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('unknown setupParams "widht"') }),
    );
  });

  it("keeps the failing ioctl's errno and says what was being done", () => {
    const busy = fakeContext('/dev/video0', {}, (request, arg) => {
      if (request !== v4l2.VIDIOC_REQBUFS) return captureNode(request, arg);
      throw Object.assign(new Error('EBUSY: resource busy or locked, ioctl'), { code: 'EBUSY' });
    });
    expect(() => openWith(v4l2Setup, busy.context)).toThrow(expect.objectContaining({ code: 'EBUSY', message: 'VIDIOC_REQBUFS 2 MMAP: EBUSY: resource busy or locked, ioctl' }));
    expect(busy.open.size).toBe(0);
  });
});

describe('alsa.ts', () => {
  const playback = (bufferBytes: [number, number]): IoctlAnswerer => (request, arg) => {
    if (request === alsa.SNDRV_PCM_IOCTL_INFO) return { arg: encode(alsa.pcmInfo, { stream: alsa.SNDRV_PCM_STREAM_PLAYBACK }) };
    if (request !== alsa.SNDRV_PCM_IOCTL_HW_PARAMS) return enotty();
    const params = Buffer.from(arg);
    params.writeUInt32LE(bufferBytes[0], alsa.INTERVALS_AT + (alsa.HW_PARAM.BUFFER_BYTES - alsa.HW_PARAM.SAMPLE_BITS) * alsa.INTERVAL_BYTES);
    params.writeUInt32LE(bufferBytes[1], alsa.INTERVALS_AT + (alsa.HW_PARAM.BUFFER_BYTES - alsa.HW_PARAM.SAMPLE_BITS) * alsa.INTERVAL_BYTES + 4);
    return { arg: params };
  };

  it('asks for MMAP_INTERLEAVED and the parameters given, and maps the data area at 0, page aligned', () => {
    let sent: Buffer | undefined;
    const fake = fakeContext('/dev/snd/pcmC0D0p', { format: 'U8', channels: 1, rate: 8000, bufferFrames: 1000, periods: 2 }, (request, arg) => {
      if (request === alsa.SNDRV_PCM_IOCTL_HW_PARAMS) sent = arg;
      return playback([1000, 1000])(request, arg);
    });
    expect(openWith(alsaSetup, fake.context)).toEqual({ fd: 10, fds: [10], offset: 0n, size: 4096n, reach: 'fork' });
    expect(sent).toBeDefined();
    const params = sent!;
    expect(alsa.maskBits(params, alsa.HW_PARAM.ACCESS)).toEqual([alsa.SNDRV_PCM_ACCESS_MMAP_INTERLEAVED]);
    expect(alsa.maskBits(params, alsa.HW_PARAM.FORMAT)).toEqual([alsa.SNDRV_PCM_FORMATS.U8]);
    expect(alsa.interval(params, alsa.HW_PARAM.CHANNELS)).toMatchObject({ min: 1, max: 1 });
    expect(alsa.interval(params, alsa.HW_PARAM.RATE)).toMatchObject({ min: 8000, max: 8000 });
    expect(alsa.interval(params, alsa.HW_PARAM.BUFFER_SIZE)).toMatchObject({ min: 1000, max: 1000 });
    expect(alsa.interval(params, alsa.HW_PARAM.PERIODS)).toMatchObject({ min: 2, max: 2 });
    expect(alsa.interval(params, alsa.HW_PARAM.PERIOD_SIZE)).toMatchObject({ min: 0, max: 0xffffffff });
  });

  it('refuses a capture node, a buffer size the kernel left open, and a format snd-dummy lacks', () => {
    const capture = fakeContext('/dev/snd/pcmC0D0c', {}, (request) =>
      request === alsa.SNDRV_PCM_IOCTL_INFO ? { arg: encode(alsa.pcmInfo, { stream: 1 }) } : enotty(),
    );
    expect(() => openWith(alsaSetup, capture.context)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(capture.open.size).toBe(0);
    const open = fakeContext('/dev/snd/pcmC0D0p', {}, playback([4096, 65536]));
    expect(() => openWith(alsaSetup, open.context)).toThrow('SNDRV_PCM_IOCTL_HW_PARAMS left buffer bytes at [4096, 65536]');
    expect(open.open.size).toBe(0);
    expect(() => openWith(alsaSetup, fakeContext('/dev/snd/pcmC0D0p', { format: 'S32_LE' }, playback([0, 0])).context)).toThrow(/setupParams.format must be one of "U8", "S16_LE"/);
  });
});

describe('dmabuf.ts', () => {
  it('udmabuf: a sealed memfd of the size, UDMABUF_CREATE, the new fd; the memfd and the node closed', () => {
    let create: Values<typeof dmabuf.udmabufCreate.fields> | undefined;
    const fake = fakeContext('/dev/udmabuf', { size: 8192 }, (request, arg) => {
      if (request !== dmabuf.UDMABUF_CREATE) return enotty();
      create = decode(dmabuf.udmabufCreate, arg);
      return { result: 42 };
    });
    expect(openWith(dmabufSetup, fake.context)).toEqual({ fd: 42, fds: [42], offset: 0n, size: 8192n, reach: 'fork' });
    expect(create).toEqual({ memfd: 11, flags: dmabuf.UDMABUF_FLAGS_CLOEXEC, offset: 0n, size: 8192n });
    expect(fake.calls).toEqual([
      'open /dev/udmabuf',
      'memfd_create',
      'ftruncate 8192',
      `fcntl ${C.F_ADD_SEALS} ${C.F_SEAL_SHRINK}`,
      `ioctl 0x${dmabuf.UDMABUF_CREATE.toString(16)}`,
      'close 11',
      'close 10',
    ]);
  });

  it('a heap: DMA_HEAP_IOCTL_ALLOC of the size, read-write and close-on-exec, the fd it returns', () => {
    const fake = fakeContext('/dev/dma_heap/system', { size: 4096 }, (request, arg) => {
      if (request !== dmabuf.DMA_HEAP_IOCTL_ALLOC) return enotty();
      expect(decode(dmabuf.heapAllocation, arg)).toEqual({ len: 4096n, fd: 0, fdFlags: C.O_RDWR | C.O_CLOEXEC, heapFlags: 0n });
      return { arg: encode(dmabuf.heapAllocation, { ...decode(dmabuf.heapAllocation, arg), fd: 7 }) };
    });
    expect(openWith(dmabufSetup, fake.context)).toEqual({ fd: 7, fds: [7], offset: 0n, size: 4096n, reach: 'fork' });
    expect(fake.open.size).toBe(0);
  });

  it('refuses another node, a size that is not a page multiple or missing, and closes what it opened on failure', () => {
    expect(() => openWith(dmabufSetup, fakeContext('/dev/null', { size: 4096 }, enotty).context)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => openWith(dmabufSetup, fakeContext('/dev/udmabuf', { size: 5000 }, enotty).context)).toThrow('setupParams.size 5000 is not a page multiple');
    expect(() => openWith(dmabufSetup, fakeContext('/dev/udmabuf', {}, enotty).context)).toThrow(/setupParams.size must be a whole number/);
    const failing = fakeContext('/dev/udmabuf', { size: 4096 }, enotty);
    expect(() => openWith(dmabufSetup, failing.context)).toThrow(expect.objectContaining({ code: 'ENOTTY', message: expect.stringMatching(/^UDMABUF_CREATE of 4096 bytes: ENOTTY/) }));
    expect(failing.open.size).toBe(0);
  });
});

/**
 * V4L2 MMAP capture buffers (videobuf2), e.g. vivid's: VIDIOC_QUERYCAP to
 * check the node captures, VIDIOC_S_FMT for a frame size, VIDIOC_REQBUFS
 * for MMAP buffers and VIDIOC_QUERYBUF for the last buffer's m.offset
 * cookie and length. Layouts: include/uapi/linux/videodev2.h (the same in
 * 6.1 and 6.12), x86_64 offsets.
 *
 * setupParams: width, height (the frame; default: keep the driver's),
 * pixelformat (a fourcc, default "YUYV"), count (buffers asked for,
 * default 2).
 */
import { readdirSync } from 'node:fs';
import { cString, decode, encode, ior, iowr, struct, u32 } from '../../../../guest/ioctl-layout.js';
import type { SetupContext, SetupObject, TargetSetup } from '../../../../guest/setup-api.js';
import { countParam, doing, ioctl, onlyParams, pageAlign, setupFailure } from './setup-support.js';

export const V4L2_CAP_VIDEO_CAPTURE = 0x1;
export const V4L2_CAP_STREAMING = 0x0400_0000;
export const V4L2_CAP_DEVICE_CAPS = 0x8000_0000;
export const V4L2_BUF_TYPE_VIDEO_CAPTURE = 1;
export const V4L2_MEMORY_MMAP = 1;
/** V4L2_FIELD_ANY: the driver picks. */
const V4L2_FIELD_ANY = 0;

/** struct v4l2_capability (driver[16] at 0, card[32] at 16). */
export const capability = struct('v4l2_capability', 104, { capabilities: u32(84), deviceCaps: u32(88) });

/** struct v4l2_format with fmt.pix: the union `fmt` sits at 8 (it holds pointers, in struct v4l2_window). */
export const format = struct('v4l2_format', 208, {
  type: u32(0),
  width: u32(8),
  height: u32(12),
  pixelformat: u32(16),
  field: u32(20),
  bytesperline: u32(24),
  sizeimage: u32(28),
});

export const requestBuffers = struct('v4l2_requestbuffers', 20, { count: u32(0), type: u32(4), memory: u32(8), capabilities: u32(12) });

/**
 * struct v4l2_buffer: struct timeval timestamp (two longs) aligns to 8,
 * so it sits at 24 after field (16) and 4 bytes of padding; timecode (16
 * bytes) at 40, sequence 56, memory 60, the union m (offset, userptr,
 * planes, fd) at 64, length 72.
 */
export const buffer = struct('v4l2_buffer', 88, {
  index: u32(0),
  type: u32(4),
  bytesused: u32(8),
  flags: u32(12),
  field: u32(16),
  sequence: u32(56),
  memory: u32(60),
  offset: u32(64),
  length: u32(72),
});

export const VIDIOC_QUERYCAP = ior('V', 0, capability.size);
export const VIDIOC_S_FMT = iowr('V', 5, format.size);
export const VIDIOC_REQBUFS = iowr('V', 8, requestBuffers.size);
export const VIDIOC_QUERYBUF = iowr('V', 9, buffer.size);

/** v4l2_fourcc('Y','U','Y','V'): the four characters, first in the low byte. */
export function fourcc(code: string): number {
  if (!/^[\x20-\x7e]{4}$/.test(code)) throw setupFailure(`a fourcc is four printable characters, not ${JSON.stringify(code)}`, 'EINVAL');
  return Buffer.from(code, 'latin1').readUInt32LE(0);
}

interface Capabilities {
  driver: string;
  card: string;
  /** The node's own capabilities (device_caps), not the whole device's. */
  caps: number;
}

function queryCap(context: SetupContext, fd: number, device: string): Capabilities {
  const bytes = ioctl(context, fd, VIDIOC_QUERYCAP, Buffer.alloc(capability.size), `VIDIOC_QUERYCAP on ${device}`);
  const { capabilities, deviceCaps } = decode(capability, bytes);
  // V4L2_CAP_DEVICE_CAPS: device_caps holds this node's capabilities; capabilities is the whole device's.
  const caps = (capabilities & V4L2_CAP_DEVICE_CAPS) !== 0 ? deviceCaps : capabilities;
  return { driver: cString(bytes, 0, 16), card: cString(bytes, 16, 32), caps };
}

const capturesByMmap = (caps: number): boolean => (caps & V4L2_CAP_VIDEO_CAPTURE) !== 0 && (caps & V4L2_CAP_STREAMING) !== 0;

/** The /dev/video* nodes that capture by streaming, for the message when the profile names another. */
function captureNodes(context: SetupContext): string[] {
  const nodes = readdirSync('/dev').filter((name) => /^video\d+$/.test(name)).map((name) => `/dev/${name}`);
  return nodes.filter((node) => {
    let fd: number | undefined;
    try {
      fd = context.native.open(node, context.c.O_RDWR);
      return capturesByMmap(queryCap(context, fd, node).caps);
    } catch {
      return false;
    } finally {
      if (fd !== undefined) context.native.close(fd);
    }
  });
}

function setFormat(context: SetupContext, fd: number): void {
  const width = countParam(context, 'width', 0, 0);
  const height = countParam(context, 'height', 0, 0);
  const pixelformat = fourcc(typeof context.params.pixelformat === 'string' ? context.params.pixelformat : 'YUYV');
  if (width === 0 && height === 0 && context.params.pixelformat === undefined) return;
  const asked = { type: V4L2_BUF_TYPE_VIDEO_CAPTURE, width, height, pixelformat, field: V4L2_FIELD_ANY };
  const got = decode(format, ioctl(context, fd, VIDIOC_S_FMT, encode(format, asked), `VIDIOC_S_FMT ${width}x${height}`));
  // S_FMT adjusts rather than refuses: a profile's size must not silently become another.
  if (got.width !== width || got.height !== height || got.pixelformat !== pixelformat) {
    throw setupFailure(`VIDIOC_S_FMT gave ${got.width}x${got.height} fourcc 0x${got.pixelformat.toString(16)} for ${width}x${height} 0x${pixelformat.toString(16)}`);
  }
}

/**
 * reach 'reopen': vb2_fop_mmap maps through the video_device's one queue
 * (vdev->queue), whichever open file asks, and vb2_mmap never checks the
 * queue's owner (6.1 and 6.12). vb2_mmap also refuses a mapping without
 * VM_SHARED, treats vm_pgoff as a cookie naming one buffer (never an
 * offset into it) and maps at most PAGE_ALIGN(length) from its start.
 */
const v4l2Capture: TargetSetup = {
  open(context: SetupContext): SetupObject {
    onlyParams(context, ['width', 'height', 'pixelformat', 'count']);
    const { native, c, device } = context;
    const fd = doing(`open ${device}`, () => native.open(device, c.O_RDWR));
    try {
      const cap = queryCap(context, fd, device);
      if (!capturesByMmap(cap.caps)) {
        const others = captureNodes(context);
        throw setupFailure(
          `${device} (${cap.driver}, ${cap.card}) is not a streaming capture node (device_caps 0x${cap.caps.toString(16)}); ` +
            (others.length > 0 ? `these are: ${others.join(', ')}` : 'no /dev/video* node is'),
          'ENODEV',
        );
      }
      setFormat(context, fd);
      const count = countParam(context, 'count', 2);
      const asked = { count, type: V4L2_BUF_TYPE_VIDEO_CAPTURE, memory: V4L2_MEMORY_MMAP };
      const granted = decode(requestBuffers, ioctl(context, fd, VIDIOC_REQBUFS, encode(requestBuffers, asked), `VIDIOC_REQBUFS ${count} MMAP`)).count;
      if (granted === 0) throw setupFailure(`VIDIOC_REQBUFS granted no buffer for ${count}`, 'ENOMEM');
      // The last buffer: its offset plus its length names no buffer, so that mapping past its end must fail.
      const index = granted - 1;
      const query = { index, type: V4L2_BUF_TYPE_VIDEO_CAPTURE, memory: V4L2_MEMORY_MMAP };
      const got = decode(buffer, ioctl(context, fd, VIDIOC_QUERYBUF, encode(buffer, query), `VIDIOC_QUERYBUF ${index}`));
      return { fd, fds: [fd], offset: BigInt(got.offset), size: pageAlign(got.length, context.pageSize), reach: 'reopen' };
    } catch (error) {
      native.close(fd);
      throw error;
    }
  },
};

export default v4l2Capture;

/**
 * An ALSA PCM's data area, e.g. snd-dummy's: SNDRV_PCM_IOCTL_HW_PARAMS with
 * SNDRV_PCM_ACCESS_MMAP_INTERLEAVED on the profile's playback node, then
 * the data area at SNDRV_PCM_MMAP_OFFSET_DATA (0), PAGE_ALIGN(buffer
 * bytes) long. Layouts: include/uapi/sound/asound.h (the same in 6.1 and
 * 6.12; only SNDRV_PCM_VERSION differs), x86_64 offsets.
 *
 * setupParams: format ("S16_LE" or "U8", the formats snd-dummy offers),
 * channels (default 2), rate (default 48000), bufferFrames (default
 * 16384), periods (default 4). Whatever they leave open the kernel fixes
 * itself (snd_pcm_hw_params_choose, called by snd_pcm_hw_params).
 */
import { cString, decode, encode, ior, iowr, s32, struct, u32, u64 } from '../../../../guest/ioctl-layout.js';
import type { SetupContext, SetupObject, TargetSetup } from '../../../../guest/setup-api.js';
import { choiceParam, countParam, doing, ioctl, onlyParams, pageAlign, setupFailure } from './setup-support.js';

/** snd_pcm_hw_param_t: the masks, then the intervals from SNDRV_PCM_HW_PARAM_FIRST_INTERVAL (8) on. */
export const HW_PARAM = {
  ACCESS: 0,
  FORMAT: 1,
  SUBFORMAT: 2,
  SAMPLE_BITS: 8,
  FRAME_BITS: 9,
  CHANNELS: 10,
  RATE: 11,
  PERIOD_TIME: 12,
  PERIOD_SIZE: 13,
  PERIOD_BYTES: 14,
  PERIODS: 15,
  BUFFER_TIME: 16,
  BUFFER_SIZE: 17,
  BUFFER_BYTES: 18,
  TICK_TIME: 19,
} as const;
const FIRST_INTERVAL = HW_PARAM.SAMPLE_BITS;
const LAST_INTERVAL = HW_PARAM.TICK_TIME;

export const SNDRV_PCM_ACCESS_MMAP_INTERLEAVED = 0;
export const SNDRV_PCM_SUBFORMAT_STD = 0;
export const SNDRV_PCM_FORMATS = { U8: 1, S16_LE: 2 } as const;
export const SNDRV_PCM_STREAM_PLAYBACK = 0;
export const SNDRV_PCM_MMAP_OFFSET_DATA = 0n;

/**
 * struct snd_pcm_hw_params: masks[3] (struct snd_mask, 8 u32 each) at 4,
 * mres[5] at 100, intervals[12] (struct snd_interval: min, max, then the
 * bit-fields openmin, openmax, integer, empty in bits 0-3 of one u32) at
 * 260, ires[9] at 404, then the fields below.
 */
export const MASKS_AT = 4;
export const MASK_BYTES = 32;
export const INTERVALS_AT = 260;
export const INTERVAL_BYTES = 12;
const INTERVAL_INTEGER = 1 << 2;
const INTERVAL_EMPTY = 1 << 3;
export const hwParams = struct('snd_pcm_hw_params', 608, {
  flags: u32(0),
  rmask: u32(512),
  cmask: u32(516),
  info: u32(520),
  msbits: u32(524),
  rateNum: u32(528),
  rateDen: u32(532),
  fifoSize: u64(536),
});

/** struct snd_pcm_info (id[64] at 16, name[80] at 80). */
export const pcmInfo = struct('snd_pcm_info', 288, { device: u32(0), subdevice: u32(4), stream: s32(8), card: s32(12) });

export const SNDRV_PCM_IOCTL_PVERSION = ior('A', 0x00, 4);
export const SNDRV_PCM_IOCTL_INFO = ior('A', 0x01, pcmInfo.size);
export const SNDRV_PCM_IOCTL_HW_REFINE = iowr('A', 0x10, hwParams.size);
export const SNDRV_PCM_IOCTL_HW_PARAMS = iowr('A', 0x11, hwParams.size);

export interface Interval {
  min: number;
  max: number;
  integer: boolean;
  empty: boolean;
}

function intervalAt(param: number): number {
  if (param < FIRST_INTERVAL || param > LAST_INTERVAL) throw new RangeError(`hw param ${param} is not an interval`);
  return INTERVALS_AT + (param - FIRST_INTERVAL) * INTERVAL_BYTES;
}

function maskAt(param: number): number {
  if (param < HW_PARAM.ACCESS || param > HW_PARAM.SUBFORMAT) throw new RangeError(`hw param ${param} is not a mask`);
  return MASKS_AT + param * MASK_BYTES;
}

/**
 * A snd_pcm_hw_params that allows everything, as alsa-lib's
 * snd_pcm_hw_params_any starts: every mask full, every interval [0, UINT_MAX],
 * every parameter asked to be refined (rmask), info all ones.
 */
export function anyHwParams(): Buffer {
  const params = encode(hwParams, { rmask: 0xffffffff, info: 0xffffffff });
  params.fill(0xff, MASKS_AT, MASKS_AT + 3 * MASK_BYTES);
  for (let param = FIRST_INTERVAL; param <= LAST_INTERVAL; param++) params.writeUInt32LE(0xffffffff, intervalAt(param) + 4);
  return params;
}

/** Leaves one value in a mask parameter (access, format, subformat). */
export function setMask(params: Buffer, param: number, bit: number): void {
  const at = maskAt(param);
  params.fill(0, at, at + MASK_BYTES);
  params.writeUInt32LE((1 << (bit % 32)) >>> 0, at + 4 * Math.floor(bit / 32));
}

/** The bits set in a mask parameter. */
export function maskBits(params: Uint8Array, param: number): number[] {
  const at = maskAt(param);
  const view = Buffer.from(params.buffer, params.byteOffset, params.byteLength);
  const bits: number[] = [];
  for (let bit = 0; bit < MASK_BYTES * 8; bit++) if ((view.readUInt32LE(at + 4 * Math.floor(bit / 32)) >>> bit % 32) & 1) bits.push(bit);
  return bits;
}

/** Fixes an interval parameter to one integer value. */
export function setInterval(params: Buffer, param: number, value: number): void {
  const at = intervalAt(param);
  params.writeUInt32LE(value, at);
  params.writeUInt32LE(value, at + 4);
  params.writeUInt32LE(INTERVAL_INTEGER, at + 8);
}

export function interval(params: Uint8Array, param: number): Interval {
  const at = intervalAt(param);
  const view = Buffer.from(params.buffer, params.byteOffset, params.byteLength);
  const bits = view.readUInt32LE(at + 8);
  return { min: view.readUInt32LE(at), max: view.readUInt32LE(at + 4), integer: (bits & INTERVAL_INTEGER) !== 0, empty: (bits & INTERVAL_EMPTY) !== 0 };
}

/** The one value the kernel fixed an interval to after HW_PARAMS (min = max, not open). */
function fixedValue(params: Uint8Array, param: number, name: string): number {
  const { min, max, empty } = interval(params, param);
  if (empty || min !== max) throw setupFailure(`SNDRV_PCM_IOCTL_HW_PARAMS left ${name} at [${min}, ${max}]${empty ? ' (empty)' : ''}`);
  return min;
}

/**
 * reach 'fork': the data area belongs to the substream's runtime
 * (snd_pcm_mmap_data reads pcm_file->substream->runtime, 6.1 and 6.12), and
 * each open of the node takes a substream of its own (snd_pcm_open_file →
 * snd_pcm_open_substream); another substream has no hw_params, so its
 * snd_pcm_mmap_data refuses with EBADFD (state OPEN), or the open waits
 * while every substream is taken.
 */
const alsaPcmData: TargetSetup = {
  open(context: SetupContext): SetupObject {
    onlyParams(context, ['format', 'channels', 'rate', 'bufferFrames', 'periods']);
    const formatName = choiceParam(context, 'format', Object.keys(SNDRV_PCM_FORMATS) as (keyof typeof SNDRV_PCM_FORMATS)[], 'S16_LE');
    const channels = countParam(context, 'channels', 2);
    const rate = countParam(context, 'rate', 48000);
    const bufferFrames = countParam(context, 'bufferFrames', 16384);
    const periods = countParam(context, 'periods', 4);
    const { native, c, device } = context;
    const fd = doing(`open ${device}`, () => native.open(device, c.O_RDWR));
    try {
      const info = ioctl(context, fd, SNDRV_PCM_IOCTL_INFO, Buffer.alloc(pcmInfo.size), `SNDRV_PCM_IOCTL_INFO on ${device}`);
      const { stream, card } = decode(pcmInfo, info);
      if (stream !== SNDRV_PCM_STREAM_PLAYBACK) {
        throw setupFailure(`${device} (card ${card}, ${cString(info, 80, 80)}) is a capture PCM: the setup plays back`, 'ENODEV');
      }
      const params = anyHwParams();
      setMask(params, HW_PARAM.ACCESS, SNDRV_PCM_ACCESS_MMAP_INTERLEAVED);
      setMask(params, HW_PARAM.FORMAT, SNDRV_PCM_FORMATS[formatName]);
      setMask(params, HW_PARAM.SUBFORMAT, SNDRV_PCM_SUBFORMAT_STD);
      setInterval(params, HW_PARAM.CHANNELS, channels);
      setInterval(params, HW_PARAM.RATE, rate);
      setInterval(params, HW_PARAM.BUFFER_SIZE, bufferFrames);
      setInterval(params, HW_PARAM.PERIODS, periods);
      const what = `SNDRV_PCM_IOCTL_HW_PARAMS MMAP_INTERLEAVED ${formatName} ${channels} ch ${rate} Hz ${bufferFrames} frames in ${periods} periods`;
      const set = ioctl(context, fd, SNDRV_PCM_IOCTL_HW_PARAMS, params, what);
      // snd_pcm_hw_params sets runtime->dma_bytes to params_buffer_bytes (the managed
      // buffer's size, or the driver's own hw_params), and snd_pcm_mmap_data maps up to PAGE_ALIGN of it.
      const bufferBytes = fixedValue(set, HW_PARAM.BUFFER_BYTES, 'buffer bytes');
      return { fd, fds: [fd], offset: SNDRV_PCM_MMAP_OFFSET_DATA, size: pageAlign(bufferBytes, context.pageSize), reach: 'fork' };
    } catch (error) {
      native.close(fd);
      throw error;
    }
  },
};

export default alsaPcmData;

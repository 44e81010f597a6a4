/**
 * DRM dumb buffers, the one buffer kind every KMS driver and vgem offer:
 * DRM_IOCTL_MODE_CREATE_DUMB makes a GEM object and a handle to it on this
 * open file, DRM_IOCTL_MODE_MAP_DUMB gives the object's fake mmap offset
 * (drm_gem_dumb_map_offset: drm_gem_create_mmap_offset, 6.1 and 6.12), and
 * mmap of the node at that offset maps it (drm_gem_mmap). The structs are
 * include/uapi/drm/drm_mode.h's, the request numbers include/uapi/drm/drm.h's
 * (DRM_IOWR(0xB2..0xB4)), computed here from the layouts.
 *
 * Second process: the fake offset is found with drm_vma_offset_exact_lookup_locked
 * and the caller must be allowed (drm_vma_node_is_allowed: the drm_file
 * that created the handle), so a second open() of the node gets EACCES for
 * the same offset (drm_gem_mmap, 6.1 and 6.12): reach 'fork'.
 *
 * setupParams: width, height (pixels, default 512 x 512) and bpp (default 32).
 */
import { ioctlStruct, iowr, step, struct } from '../../../../guest/ioctl-layout.js';
import type { SetupContext, SetupObject, TargetSetup } from '../../../../guest/setup-api.js';

const createDumb = struct([
  ['height', 'u32'],
  ['width', 'u32'],
  ['bpp', 'u32'],
  ['flags', 'u32'],
  ['handle', 'u32'],
  ['pitch', 'u32'],
  ['size', 'u64'],
] as const);
const mapDumb = struct([
  ['handle', 'u32'],
  ['pad', 'u32'],
  ['offset', 'u64'],
] as const);

const DRM_IOCTL_BASE = 'd';
export const DRM_IOCTL_MODE_CREATE_DUMB = iowr(DRM_IOCTL_BASE, 0xb2, createDumb);
export const DRM_IOCTL_MODE_MAP_DUMB = iowr(DRM_IOCTL_BASE, 0xb3, mapDumb);
export const DRM_LAYOUTS = { createDumb, mapDumb };

function dimension(params: SetupContext['params'], key: string, fallback: number): number {
  const value = params[key] ?? fallback;
  if (!Number.isSafeInteger(value) || (value as number) <= 0) throw new Error(`setupParams.${key} must be a positive integer, not ${JSON.stringify(value)}`);
  return value as number;
}

const setup: TargetSetup = {
  open({ native, c, device, params }: SetupContext): SetupObject {
    const known = new Set(['width', 'height', 'bpp']);
    const unknown = Object.keys(params).find((key) => !known.has(key));
    if (unknown !== undefined) throw new Error(`setupParams.${unknown} is not a DRM dumb buffer parameter (width, height, bpp)`);
    const width = dimension(params, 'width', 512);
    const height = dimension(params, 'height', 512);
    const bpp = dimension(params, 'bpp', 32);
    const fd = step(`open ${device}`, () => native.open(device, c.O_RDWR));
    try {
      // The handle lives as long as this drm_file: closing fd releases it (drm_gem_release, 6.1 and 6.12).
      const created = ioctlStruct(native, fd, `DRM_IOCTL_MODE_CREATE_DUMB ${width}x${height}x${bpp}`, DRM_IOCTL_MODE_CREATE_DUMB, createDumb, { width, height, bpp });
      const mapped = ioctlStruct(native, fd, `DRM_IOCTL_MODE_MAP_DUMB handle ${created.handle}`, DRM_IOCTL_MODE_MAP_DUMB, mapDumb, { handle: created.handle });
      return { fd, fds: [fd], offset: mapped.offset, size: created.size, reach: 'fork' };
    } catch (error) {
      native.close(fd);
      throw error;
    }
  },
};

export default setup;

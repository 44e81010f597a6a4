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
import { decode, encode, iowr, struct, u32, u64 } from '../../../../guest/ioctl-layout.js';
import type { SetupContext, SetupObject, TargetSetup } from '../../../../guest/setup-api.js';
import { countParam, doing, ioctl, onlyParams } from './setup-support.js';

/** struct drm_mode_create_dumb (include/uapi/drm/drm_mode.h). */
export const createDumb = struct('drm_mode_create_dumb', 32, {
  height: u32(0),
  width: u32(4),
  bpp: u32(8),
  flags: u32(12),
  handle: u32(16),
  pitch: u32(20),
  size: u64(24),
});
/** struct drm_mode_map_dumb. */
export const mapDumb = struct('drm_mode_map_dumb', 16, { handle: u32(0), pad: u32(4), offset: u64(8) });

// DRM_IOCTL_BASE 'd'; DRM_IOWR(0xB2, ...) and DRM_IOWR(0xB3, ...) of include/uapi/drm/drm.h.
export const DRM_IOCTL_MODE_CREATE_DUMB = iowr('d', 0xb2, createDumb.size);
export const DRM_IOCTL_MODE_MAP_DUMB = iowr('d', 0xb3, mapDumb.size);

const setup: TargetSetup = {
  open(context: SetupContext): SetupObject {
    const { native, c, device } = context;
    onlyParams(context, ['width', 'height', 'bpp']);
    const width = countParam(context, 'width', 512);
    const height = countParam(context, 'height', 512);
    const bpp = countParam(context, 'bpp', 32);
    const fd = doing(`open ${device}`, () => native.open(device, c.O_RDWR));
    try {
      // The handle lives as long as this drm_file: closing fd releases it (drm_gem_release, 6.1 and 6.12).
      const what = `DRM_IOCTL_MODE_CREATE_DUMB ${width}x${height}x${bpp}`;
      const created = decode(createDumb, ioctl(context, fd, DRM_IOCTL_MODE_CREATE_DUMB, encode(createDumb, { width, height, bpp }), what));
      const mapped = decode(mapDumb, ioctl(context, fd, DRM_IOCTL_MODE_MAP_DUMB, encode(mapDumb, { handle: created.handle }), `DRM_IOCTL_MODE_MAP_DUMB handle ${created.handle}`));
      return { fd, fds: [fd], offset: mapped.offset, size: created.size, reach: 'fork' };
    } catch (error) {
      native.close(fd);
      throw error;
    }
  },
};

export default setup;

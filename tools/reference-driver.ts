/** The one place that knows the reference driver's module and device names (kmod/). */
export const MODULE_NAME = 'mmapkit';

/** /dev/mmapkit is the walking skeleton's name, kept as an alias of the remap device. */
export const REFERENCE_DEVICE_PATHS = {
  alias: '/dev/mmapkit',
  remap: '/dev/mmapkit-remap',
  fault: '/dev/mmapkit-fault',
  ro: '/dev/mmapkit-ro',
} as const;

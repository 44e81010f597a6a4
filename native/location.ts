/**
 * Where node-gyp puts the addon, relative to the checkout's root: the one
 * spelling of it, for the host's paths (tools/paths.ts), for native/index.ts
 * and for the guest's programs, which find the checkout through MMAPKIT_ROOT.
 * A module of its own, with no imports: tools/paths.ts is loaded before
 * anything is built, when native/api.ts's generated header names do not
 * exist yet.
 */
export const ADDON_FILE = 'native/build/Release/mmapkit_native.node';

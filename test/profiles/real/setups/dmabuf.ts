/**
 * A dma-buf, mapped through its own fd at offset 0, from either exporter
 * the profile's device names: /dev/udmabuf (UDMABUF_CREATE over a sealed
 * memfd) or a DMA-BUF heap /dev/dma_heap/NAME (DMA_HEAP_IOCTL_ALLOC).
 * Layouts: include/uapi/linux/udmabuf.h and dma-heap.h (the same in 6.1
 * and 6.12), x86_64 offsets. Debian builds both exporters in on 6.12
 * (CONFIG_UDMABUF=y, CONFIG_DMABUF_HEAPS_SYSTEM=y), neither on 6.1.
 *
 * setupParams: size (bytes, a page multiple; required).
 */
import { decode, encode, iow, iowr, struct, u32, u64 } from '../../../../guest/ioctl-layout.js';
import type { SetupContext, SetupObject, TargetSetup } from '../../../../guest/setup-api.js';
import { countParam, doing, ioctl, onlyParams, setupFailure } from './setup-support.js';

export const udmabufCreate = struct('udmabuf_create', 24, { memfd: u32(0), flags: u32(4), offset: u64(8), size: u64(16) });
export const UDMABUF_FLAGS_CLOEXEC = 0x1;
export const UDMABUF_CREATE = iow('u', 0x42, udmabufCreate.size);

export const heapAllocation = struct('dma_heap_allocation_data', 24, { len: u64(0), fd: u32(8), fdFlags: u32(12), heapFlags: u64(16) });
export const DMA_HEAP_IOCTL_ALLOC = iowr('H', 0x0, heapAllocation.size);

const UDMABUF_DEVICE = '/dev/udmabuf';
const HEAP_DIRECTORY = '/dev/dma_heap/';

/**
 * udmabuf_create (6.12) wants a shmem (or hugetlbfs) memfd sealed against
 * shrinking and not against writing (check_memfd_seals: SEALS_WANTED
 * F_SEAL_SHRINK, SEALS_DENIED F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), and pins
 * its folios (memfd_pin_folios), so the memfd is closed once the dma-buf
 * exists: the dma-buf alone holds the pages.
 */
function fromUdmabuf(context: SetupContext, device: number, size: bigint): number {
  const { native, c } = context;
  const memfd = doing('memfd_create', () => native.memfdCreate('mmapkit-udmabuf', c.MFD_ALLOW_SEALING));
  try {
    doing(`ftruncate the memfd to ${size}`, () => native.ftruncate(memfd, size));
    doing('F_ADD_SEALS F_SEAL_SHRINK', () => native.fcntl(memfd, c.F_ADD_SEALS, c.F_SEAL_SHRINK));
    const create = encode(udmabufCreate, { memfd, flags: UDMABUF_FLAGS_CLOEXEC, offset: 0n, size });
    // UDMABUF_CREATE returns the new dma-buf's fd as the ioctl's result.
    return doing(`UDMABUF_CREATE of ${size} bytes`, () => native.ioctl(device, UDMABUF_CREATE, create)).result;
  } finally {
    native.close(memfd);
  }
}

function fromHeap(context: SetupContext, heap: number, size: bigint): number {
  const { c } = context;
  const asked = encode(heapAllocation, { len: size, fdFlags: c.O_RDWR | c.O_CLOEXEC });
  return decode(heapAllocation, ioctl(context, heap, DMA_HEAP_IOCTL_ALLOC, asked, `DMA_HEAP_IOCTL_ALLOC of ${size} bytes`)).fd;
}

/**
 * reach 'fork': a dma-buf is a file of its own with no node to reopen
 * (dma_buf_getfile, an anonymous inode); a second process maps it only
 * through an inherited or passed fd. dma_buf_mmap_internal refuses a range
 * past the buffer (vm_pgoff + pages > size) before the exporter's mmap
 * sees it (6.1 and 6.12).
 */
const dmaBuf: TargetSetup = {
  open(context: SetupContext): SetupObject {
    onlyParams(context, ['size']);
    const size = BigInt(countParam(context, 'size', 0, context.pageSize, Number.MAX_SAFE_INTEGER));
    if (size % BigInt(context.pageSize) !== 0n) throw setupFailure(`setupParams.size ${size} is not a page multiple`, 'EINVAL');
    const { native, c, device } = context;
    const make = device === UDMABUF_DEVICE ? fromUdmabuf : device.startsWith(HEAP_DIRECTORY) ? fromHeap : undefined;
    if (make === undefined) throw setupFailure(`${device} is neither ${UDMABUF_DEVICE} nor a heap under ${HEAP_DIRECTORY}`, 'ENODEV');
    // The exporter's node is needed only to make the buffer.
    const exporter = doing(`open ${device}`, () => native.open(device, c.O_RDWR));
    try {
      const fd = make(context, exporter, size);
      return { fd, fds: [fd], offset: 0n, size, reach: 'fork' };
    } finally {
      native.close(exporter);
    }
  },
};

export default dmaBuf;
